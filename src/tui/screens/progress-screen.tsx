/** Writing: the install's named steps, bytes with rate and ETA, and a second question before stopping. */
import { Box, Text } from 'ink';
import { formatBytesLine, type ProgressView } from '../progress-model.js';
import { ErrorText, Keys, Muted, Title } from '../theme.js';

export function ProgressScreen({ device, view, askingStop }: { device: string; view: ProgressView; askingStop: boolean }) {
  const running = view.steps.findIndex((s) => !s.completed);
  return (
    <Box flexDirection="column">
      <Title>{`Installing to ${device}`}</Title>
      {view.steps.length === 0 ? <Muted>Starting...</Muted> : null}
      {view.steps.map((s, i) => (
        <Text key={s.description} wrap="truncate-end">{`${s.completed ? '[x]' : i === running ? '[>]' : '[ ]'} ${s.description}`}</Text>
      ))}
      <Box flexDirection="column" marginTop={1}>
        {view.bytes ? <Text wrap="truncate-end">{formatBytesLine(view.bytes)}</Text> : null}
        {view.detail ? <Text wrap="truncate-end">{view.detail}</Text> : null}
      </Box>
      {askingStop ? (
        <Box flexDirection="column" marginTop={1}>
          <ErrorText>Stop the install? The disk is being written: it will hold no working system.</ErrorText>
          <Text>Press y to stop, n to go on.</Text>
        </Box>
      ) : (
        <Keys>Tab log | Esc/Ctrl-C stop (asks first)</Keys>
      )}
    </Box>
  );
}
