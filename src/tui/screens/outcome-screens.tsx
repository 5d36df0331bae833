/** The end: the installed system with an offer to reboot, or the error, its hint and the log. */
import { Box, Text } from 'ink';
import { useKeys } from '../keys.js';
import { ErrorText, Keys, Title } from '../theme.js';

export function DoneScreen({ device, summary, answersFile, onReboot, onQuit }: { device: string; summary: string[]; answersFile: string | null; onReboot: () => void; onQuit: () => void }) {
  useKeys((input, key) => {
    if (input === 'r') onReboot();
    else if (input === 'q' || key.return) onQuit();
  });
  return (
    <Box flexDirection="column">
      <Title>{`Installed to ${device}`}</Title>
      {summary.map((l, i) => (
        <Text key={i} wrap="truncate-end">
          {l}
        </Text>
      ))}
      {answersFile ? <Text wrap="truncate-end">{`Answers saved to ${answersFile} (replay: bootc install to-disk --config ${answersFile})`}</Text> : null}
      <Box marginTop={1}>
        <Text>Remove the install medium, then reboot into the new system.</Text>
      </Box>
      <Keys>r reboot now | q quit to the shell</Keys>
    </Box>
  );
}

export function FailureScreen({ report, logPath, onQuit }: { report: string; logPath: string; onQuit: () => void }) {
  useKeys((input, key) => {
    if (input === 'q' || key.return || key.escape) onQuit();
  });
  const lines = report.trimEnd().split('\n');
  return (
    <Box flexDirection="column">
      <Title>The install failed</Title>
      {lines.slice(0, 14).map((l, i) =>
        l.startsWith('error:') ? (
          <ErrorText key={i}>{l}</ErrorText>
        ) : (
          <Text key={i} wrap="wrap">
            {l}
          </Text>
        ),
      )}
      {lines.length > 14 ? <Text>{`... (${lines.length - 14} more lines in the log)`}</Text> : null}
      <Box marginTop={1}>
        <Text wrap="wrap">{`Full log: ${logPath}`}</Text>
      </Box>
      <Keys>q quit</Keys>
    </Box>
  );
}
