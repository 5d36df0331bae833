/**
 * Screen 3: options, with the image's install configuration as the defaults. Checking the
 * values (sizes, host name, the key file) is the caller's: it reports back `error`.
 */
import { useState } from 'react';
import { Box, Text } from 'ink';
import { useKeys } from '../keys.js';
import { ROOT_FS_TYPES, type InstallFsType } from '../../install/config.js';
import type { ImageDefaults } from '../services.js';
import { TextInput } from '../text-input.js';
import { ErrorText, Keys, Muted, Title, useTheme } from '../theme.js';

export interface OptionsValues {
  filesystem: InstallFsType;
  rootSize: string;
  kargs: string;
  hostname: string;
  sshKeyFile: string;
  userName: string;
  userPasswordHash: string;
  answersFile: string;
}

export function defaultOptions(d: ImageDefaults): OptionsValues {
  return { filesystem: d.filesystem, rootSize: '', kargs: '', hostname: '', sshKeyFile: '', userName: '', userPasswordHash: '', answersFile: '' };
}

type TextField = Exclude<keyof OptionsValues, 'filesystem'>;
const FIELDS: Array<{ key: keyof OptionsValues; label: string; placeholder?: string }> = [
  { key: 'filesystem', label: 'Root filesystem' },
  { key: 'rootSize', label: 'Root size', placeholder: 'rest of the disk (or e.g. 20G)' },
  { key: 'kargs', label: 'Kernel arguments', placeholder: 'none added' },
  { key: 'hostname', label: 'Host name', placeholder: 'the image\'s' },
  { key: 'sshKeyFile', label: 'Root SSH keys file', placeholder: 'none (e.g. /root/.ssh/id_ed25519.pub)' },
  { key: 'userName', label: 'Add user', placeholder: 'none (e.g. admin)' },
  { key: 'userPasswordHash', label: 'User password hash', placeholder: 'crypt(3) hash: openssl passwd -6' },
  { key: 'answersFile', label: 'Save answers to', placeholder: 'do not save (e.g. /root/answers.toml)' },
];

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
  const [field, setField] = useState(0);
  const current = FIELDS[field]!.key;
  useKeys((input, key) => {
    if (key.upArrow) setField((f) => Math.max(0, f - 1));
    else if (key.downArrow) setField((f) => Math.min(FIELDS.length - 1, f + 1));
    else if (key.ctrl && input === 'b') onBack();
    else if (current === 'filesystem' && (key.leftArrow || key.rightArrow || input === ' ')) {
      const i = ROOT_FS_TYPES.indexOf(values.filesystem);
      const next = (i + (key.leftArrow ? ROOT_FS_TYPES.length - 1 : 1)) % ROOT_FS_TYPES.length;
      onChange({ ...values, filesystem: ROOT_FS_TYPES[next]! });
    } else if (current === 'filesystem' && key.return) onSubmit(values);
  });
  return (
    <Box flexDirection="column">
      <Title>Install a bootable container image - 3/5 Options</Title>
      {FIELDS.map((f, i) => (
        <Box key={f.key}>
          <Text bold={i === field && !plain}>{`${i === field ? '> ' : '  '}${f.label.padEnd(20)}`}</Text>
          {f.key === 'filesystem' ? (
            <Text>{ROOT_FS_TYPES.map((t) => (t === values.filesystem ? `[${t}]` : ` ${t} `)).join(' ')}</Text>
          ) : (
            <TextInput
              value={values[f.key as TextField]}
              onChange={(v) => onChange({ ...values, [f.key]: v })}
              onSubmit={(v) => onSubmit({ ...values, [f.key]: v })}
              active={i === field}
              {...(f.placeholder !== undefined ? { placeholder: f.placeholder } : {})}
            />
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
      <Keys>Up/Down field · Left/Right filesystem · Enter continue · Ctrl-B back · Tab log · Esc quit</Keys>
    </Box>
  );
}
