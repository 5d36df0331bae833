/**
 * Screen 5: the person types the device name (or "yes"). There is no default and no
 * countdown: Enter on anything else is refused and nothing is written.
 */
import { useState } from 'react';
import { Box, Text } from 'ink';
import { useKeys, useStateRef } from '../keys.js';
import type { DiskCandidate } from '../../disk/inventory.js';
import { confirmsErase, describeDisk } from '../choices.js';
import { TextField, editText } from '../text-input.js';
import { ErrorText, Keys, Title } from '../theme.js';

export function ConfirmScreen({ disk, onConfirm, onBack }: { disk: DiskCandidate; onConfirm: () => void; onBack: () => void }) {
  const [typed, setTyped, typedRef] = useStateRef('');
  const [wrong, setWrong] = useState<string | null>(null);
  useKeys((input, key) => {
    if (key.ctrl && input === 'b') {
      onBack();
      return;
    }
    const edit = editText(typedRef.current, input, key);
    if (!edit) return;
    setTyped(edit.value);
    if (edit.submit) submit(edit.value);
  });
  const submit = (value: string): void => {
    if (confirmsErase(value, disk)) onConfirm();
    else {
      setWrong(value.trim() === '' ? 'Nothing typed: nothing will be written.' : `"${value.trim()}" is not ${disk.path}: nothing will be written.`);
      setTyped('');
    }
  };
  return (
    <Box flexDirection="column">
      <Title>Install a bootable container image - 5/5 Confirm</Title>
      <ErrorText>{`ALL DATA ON ${describeDisk(disk)} WILL BE LOST.`}</ErrorText>
      <Text> </Text>
      <Text wrap="wrap">{`To erase it and install, type the device name (${disk.path}) or "yes", then Enter.`}</Text>
      <Box marginTop={1}>
        <Text>Erase {disk.path}? </Text>
        <TextField value={typed} active />
      </Box>
      {wrong ? <ErrorText>{wrong}</ErrorText> : null}
      <Keys>Enter confirm | Ctrl-B back | Tab log | Esc quit (nothing written yet)</Keys>
    </Box>
  );
}
