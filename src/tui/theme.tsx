/**
 * Look of the installer: colours unless plain (NO_COLOR, --plain, a dumb terminal), ASCII
 * markers always, so a serial console shows the same screens.
 */
import { createContext, useContext, type ReactNode } from 'react';
import { Box, Text } from 'ink';

export interface Theme {
  plain: boolean;
}

export const ThemeContext = createContext<Theme>({ plain: false });

export const useTheme = (): Theme => useContext(ThemeContext);

export function Title({ children }: { children: ReactNode }) {
  const { plain } = useTheme();
  return (
    <Box marginBottom={1}>
      <Text bold={!plain} {...(plain ? {} : { color: 'cyan' })}>
        {children}
      </Text>
    </Box>
  );
}

export function ErrorText({ children }: { children: ReactNode }) {
  const { plain } = useTheme();
  return (
    <Text wrap="wrap" {...(plain ? {} : { color: 'red' })}>
      {children}
    </Text>
  );
}

/** A line shown less prominently (a refused disk, a default value). */
export function Muted({ children }: { children: ReactNode }) {
  const { plain } = useTheme();
  return (
    <Text wrap="truncate-end" dimColor={!plain}>
      {children}
    </Text>
  );
}

/** The key help at the bottom of every screen. */
export function Keys({ children }: { children: ReactNode }) {
  const { plain } = useTheme();
  return (
    <Box marginTop={1}>
      <Text wrap="truncate-end" {...(plain ? {} : { color: 'gray' })}>
        {children}
      </Text>
    </Box>
  );
}

/** One row of a list: "> " in front of the highlighted one. */
export function Row({ selected, muted = false, children }: { selected: boolean; muted?: boolean; children: string }) {
  const { plain } = useTheme();
  const text = `${selected ? '> ' : '  '}${children}`;
  if (muted) return <Muted>{text}</Muted>;
  return (
    <Text wrap="truncate-end" bold={selected && !plain} {...(selected && !plain ? { color: 'cyan' } : {})}>
      {text}
    </Text>
  );
}
