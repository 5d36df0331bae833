/**
 * A one-line text field typed at the end (no cursor movement: keeps serial consoles simple).
 * Esc, Tab and Ctrl-keys are left to the screen and the installer.
 */
import { Text } from 'ink';
import { useKeys } from './keys.js';
import { useTheme } from './theme.js';

export interface TextInputProps {
  value: string;
  onChange: (value: string) => void;
  onSubmit?: (value: string) => void;
  active: boolean;
  /** Shown dimmed while the field is empty. */
  placeholder?: string;
  /** Hide what is typed (never used for passwords here, kept for hashes pasted in). */
  mask?: boolean;
}

export function TextInput({ value, onChange, onSubmit, active, placeholder, mask = false }: TextInputProps) {
  const { plain } = useTheme();
  useKeys(
    (input, key) => {
      if (key.return) {
        onSubmit?.(value);
        return;
      }
      if (key.backspace || key.delete) {
        onChange(value.slice(0, -1));
        return;
      }
      if (key.escape || key.tab || key.ctrl || key.meta || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.pageUp || key.pageDown) return;
      // Keys sent in a burst (a paste, tmux send-keys) arrive as one chunk; a newline in it submits.
      const end = input.search(/[\r\n]/);
      const typed = end === -1 ? input : input.slice(0, end);
      if (typed !== '') onChange(value + typed);
      if (end !== -1) onSubmit?.(value + typed);
    },
    active,
  );
  const shown = mask ? '*'.repeat(value.length) : value;
  const cursor = active ? '_' : '';
  if (value === '' && placeholder !== undefined) {
    return (
      <Text wrap="truncate-start">
        {cursor}
        <Text dimColor={!plain}>{placeholder}</Text>
      </Text>
    );
  }
  return <Text wrap="truncate-start">{shown + cursor}</Text>;
}
