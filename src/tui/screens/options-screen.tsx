/**
 * Screen 3: options, with the image's install configuration as the defaults. Checking the
 * values (sizes, host name, the key file) is the caller's: it reports back `error`.
 */
import { Box, Text } from 'ink';
import { useKeys, useStateRef } from '../keys.js';
import { ROOT_FS_TYPES, type InstallFsType } from '../../install/config.js';
import { installerFields, type InstallerField } from '../../install/options.js';
import type { ImageDefaults } from '../services.js';
import { TextField, editText } from '../text-input.js';
import { ErrorText, Keys, Muted, Title, useTheme } from '../theme.js';

/** The fields of the install options table (src/install/options.ts), then where to save the answers. */
export type OptionsValues = { filesystem: InstallFsType } & Record<Exclude<InstallerField, 'filesystem'> | 'answersFile', string>;

type TextFieldName = Exclude<keyof OptionsValues, 'filesystem'>;
const FIELDS: Array<{ key: keyof OptionsValues; label: string; placeholder?: string }> = [
  ...installerFields().map(({ field, label, placeholder }) => ({ key: field, label, ...(placeholder !== undefined ? { placeholder } : {}) })),
  { key: 'answersFile', label: 'Save answers to', placeholder: 'do not save (e.g. /root/answers.toml)' },
];

export function defaultOptions(d: ImageDefaults): OptionsValues {
  const text = Object.fromEntries(FIELDS.map((f) => [f.key, ''])) as Record<TextFieldName, string>;
  return { ...text, filesystem: d.filesystem };
}

export interface OptionsScreenProps {
  values: OptionsValues;
  defaults: ImageDefaults;
  error: { message: string; hint?: string } | null;
  onChange: (values: OptionsValues) => void;
  /** With the values as they are, including a key typed in the same burst as Enter. */
  onSubmit: (values: OptionsValues) => void;
  onBack: () => void;
}

export function OptionsScreen({ values, defaults, error, onChange, onSubmit, onBack }: OptionsScreenProps) {
  const { plain } = useTheme();
  const [field, setField, fieldRef] = useStateRef(0);
  // The screen's own copy, read by key handlers before the parent re-renders; the parent keeps it for "back".
  const [current, setCurrent, currentRef] = useStateRef(values);
  const change = (next: OptionsValues): void => {
    setCurrent(next);
    onChange(next);
  };
  useKeys((input, key) => {
    const v = currentRef.current;
    const name = FIELDS[fieldRef.current]!.key;
    if (key.upArrow) setField((f) => Math.max(0, f - 1));
    else if (key.downArrow) setField((f) => Math.min(FIELDS.length - 1, f + 1));
    else if (key.ctrl && input === 'b') onBack();
    else if (name === 'filesystem') {
      if (key.leftArrow || key.rightArrow || input === ' ') {
        const i = ROOT_FS_TYPES.indexOf(v.filesystem);
        const next = (i + (key.leftArrow ? ROOT_FS_TYPES.length - 1 : 1)) % ROOT_FS_TYPES.length;
        change({ ...v, filesystem: ROOT_FS_TYPES[next]! });
      } else if (key.return) onSubmit(v);
    } else {
      const edit = editText(v[name as TextFieldName], input, key);
      if (!edit) return;
      const next = { ...v, [name]: edit.value };
      if (edit.value !== v[name as TextFieldName]) change(next);
      if (edit.submit) onSubmit(next);
    }
  });
  return (
    <Box flexDirection="column">
      <Title>Install a bootable container image - 3/5 Options</Title>
      {FIELDS.map((f, i) => (
        <Box key={f.key}>
          <Text bold={i === field && !plain}>{`${i === field ? '> ' : '  '}${f.label.padEnd(20)}`}</Text>
          {f.key === 'filesystem' ? (
            <Text>{ROOT_FS_TYPES.map((t) => (t === current.filesystem ? `[${t}]` : ` ${t} `)).join(' ')}</Text>
          ) : (
            <TextField value={current[f.key as TextFieldName]} active={i === field} {...(f.placeholder !== undefined ? { placeholder: f.placeholder } : {})} />
          )}
        </Box>
      ))}
      <Box flexDirection="column" marginTop={1}>
        <Muted>{`Image defaults: filesystem ${defaults.filesystem}${defaults.stateroot ? `, stateroot ${defaults.stateroot}` : ''}`}</Muted>
        {defaults.configKargs.length > 0 ? <Muted>{`Install config kernel arguments (always added): ${defaults.configKargs.join(' ')}`}</Muted> : null}
      </Box>
      {error ? (
        <Box flexDirection="column" marginTop={1}>
          <ErrorText>error: {error.message}</ErrorText>
          {error.hint ? <Text wrap="wrap">hint: {error.hint}</Text> : null}
        </Box>
      ) : null}
      <Keys>Up/Down field | Left/Right fs | Enter next | Ctrl-B back | Tab log | Esc quit</Keys>
    </Box>
  );
}
