/** Screen 1: which image to install: one found on attached media, the default, or typed. */
import { useEffect, useState } from 'react';
import { Box, Text } from 'ink';
import { useKeys, useStateRef } from '../keys.js';
import { UserError } from '../../core/errors.js';
import { parseReference } from '../../oci/reference.js';
import type { ImageSourceChoice } from '../services.js';
import { TextField, editText } from '../text-input.js';
import { ErrorText, Keys, Muted, Row, Title } from '../theme.js';

export interface ImageScreenProps {
  /** The default image first, then those found on media so far. */
  sources: ImageSourceChoice[];
  /** Still looking on media. */
  searching: boolean;
  /** From a failed attempt to read the chosen image. */
  error: { message: string; hint?: string } | null;
  initial?: string;
  onChoose: (reference: string) => void;
}

const TYPE_ONE = 'Type an image reference...';

export function ImageScreen({ sources, searching, error, initial, onChoose }: ImageScreenProps) {
  const items = [...sources.map((s) => `${s.reference}  (${s.origin})`), TYPE_ONE];
  const [cursor, setCursor, cursorRef] = useStateRef(0);
  const [typing, setTyping, typingRef] = useStateRef(false);
  const [typed, setTyped, typedRef] = useStateRef(initial ?? '');
  const [problem, setProblem] = useState<{ message: string; hint?: string } | null>(null);
  useEffect(() => setProblem(error), [error]);

  const submit = (reference: string): void => {
    try {
      parseReference(reference.trim());
      setProblem(null);
      onChoose(reference.trim());
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      setProblem({ message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
    }
  };

  useKeys((input, key) => {
    if (typingRef.current) {
      if (key.ctrl && input === 'b') {
        setTyping(false);
        return;
      }
      const edit = editText(typedRef.current, input, key);
      if (!edit) return;
      setTyped(edit.value);
      if (edit.submit) submit(edit.value);
      return;
    }
    if (key.upArrow) setCursor((c) => Math.max(0, c - 1));
    else if (key.downArrow) setCursor((c) => Math.min(items.length - 1, c + 1));
    else if (key.return) {
      const chosen = sources[cursorRef.current];
      if (chosen) submit(chosen.reference);
      else setTyping(true);
    }
  });

  return (
    <Box flexDirection="column">
      <Title>Install a bootable container image - 1/5 Image</Title>
      <Text>Which image should be installed?</Text>
      {searching ? <Muted>Looking for images on attached media...</Muted> : null}
      <Box flexDirection="column" marginTop={1}>
        {items.map((item, i) => (
          <Row key={item} selected={i === cursor}>
            {item}
          </Row>
        ))}
      </Box>
      {typing ? (
        <Box marginTop={1}>
          <Text>Image: </Text>
          <TextField value={typed} active={typing} placeholder="quay.io/example/os:latest, oci:/path:tag, oci-archive:file.tar" />
        </Box>
      ) : null}
      {problem ? (
        <Box flexDirection="column" marginTop={1}>
          <ErrorText>error: {problem.message}</ErrorText>
          {problem.hint ? <Text wrap="wrap">hint: {problem.hint}</Text> : null}
        </Box>
      ) : null}
      <Keys>{typing ? 'Enter read image | Ctrl-B back to the list | Tab log | Esc quit' : 'Up/Down choose | Enter select | Tab log | Esc quit'}</Keys>
    </Box>
  );
}
