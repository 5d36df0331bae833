/** Screen 4: exactly what will be erased and created, before anything is. */
import { Box, Text } from 'ink';
import { useKeys } from '../keys.js';
import { Keys, Title } from '../theme.js';

export function PlanScreen({ lines, onAccept, onBack }: { lines: string[]; onAccept: () => void; onBack: () => void }) {
  useKeys((input, key) => {
    if (key.return) onAccept();
    else if (key.leftArrow || input === 'b') onBack();
  });
  return (
    <Box flexDirection="column">
      <Title>Install a bootable container image - 4/5 Plan</Title>
      {lines.map((l, i) => (
        <Text key={i} wrap="truncate-end">
          {l === '' ? ' ' : l}
        </Text>
      ))}
      <Keys>Enter continue | Left back | Tab log | Esc quit (nothing written yet)</Keys>
    </Box>
  );
}
