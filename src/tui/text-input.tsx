/**
 * A one-line text field typed at the end (no cursor movement: keeps serial consoles simple).
 * The screen owns the keys: `editText` is the pure edit, `TextField` only draws. Esc, Tab,
 * arrows and Ctrl-keys are not text and are left to the screen.
 */
import { Text } from 'ink';
import type { Key } from 'ink';
import { useTheme } from './theme.js';

export interface TextEdit {
  value: string;
  /** Enter (or a newline inside a burst of typed text) submits. */
  submit: boolean;
}

/** The field after one key; null when the key is not for the text field. */
export function editText(value: string, input: string, key: Key): TextEdit | null {
  if (key.return) return { value, submit: true };
  if (key.backspace || key.delete) return { value: value.slice(0, -1), submit: false };
  if (key.escape || key.tab || key.ctrl || key.meta || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.pageUp || key.pageDown) return null;
  // Keys sent in a burst (a paste) can arrive as one chunk: edit character by character.
  let next = value;
  for (const ch of input) {
    if (ch === '\r' || ch === '\n') return { value: next, submit: true };
    if (ch === '\x7f' || ch === '\b') next = next.slice(0, -1);
    else if (ch >= ' ') next += ch;
  }
  return next === value ? null : { value: next, submit: false };
}

export interface TextFieldProps {
  value: string;
  active: boolean;
  /** Shown dimmed while the field is empty. */
  placeholder?: string;
}

export function TextField({ value, active, placeholder }: TextFieldProps) {
  const { plain } = useTheme();
  const cursor = active ? '_' : '';
  if (value === '' && placeholder !== undefined) {
    return (
      <Text wrap="truncate-start">
        {cursor}
        <Text dimColor={!plain}>{placeholder}</Text>
      </Text>
    );
  }
  return <Text wrap="truncate-start">{value + cursor}</Text>;
}
