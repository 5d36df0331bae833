/** Shown while something slow runs before writing starts (reading the image, listing disks). */
import { Box, Text } from 'ink';
import { Keys, Title } from '../theme.js';

export function BusyScreen({ title, doing }: { title: string; doing: string }) {
  return (
    <Box flexDirection="column">
      <Title>{title}</Title>
      <Text wrap="truncate-end">{doing}</Text>
      <Keys>Tab log | Esc quit (nothing has been written)</Keys>
    </Box>
  );
}
