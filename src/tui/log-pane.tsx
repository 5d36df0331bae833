/** The log pane (Tab): the last lines of the installer's log, under the current screen. */
import { useEffect, useState } from 'react';
import { Box, Text } from 'ink';
import type { LogBook } from './services.js';
import { Muted, useTheme } from './theme.js';

export const LOG_PANE_LINES = 7;

export function LogPane({ log, logPath }: { log: LogBook; logPath: string }) {
  const [, setTick] = useState(0);
  useEffect(() => log.subscribe(() => setTick((t) => t + 1)), [log]);
  const { plain } = useTheme();
  const lines = log.tail(LOG_PANE_LINES);
  return (
    <Box flexDirection="column" borderStyle={plain ? 'classic' : 'single'} borderLeft={false} borderRight={false} borderBottom={false}>
      <Muted>{`Log (${logPath})`}</Muted>
      {lines.length === 0 ? <Muted>(empty)</Muted> : null}
      {lines.map((l, i) => (
        <Text key={i} wrap="truncate-end">
          {l === '' ? ' ' : l}
        </Text>
      ))}
    </Box>
  );
}
