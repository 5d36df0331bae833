/**
 * Key handling that never sees a stale screen. Ink's useInput rebinds its handler in an
 * effect after each render, so keys arriving in a burst (a paste, `tmux send-keys`, a fast
 * typist on a serial line) could reach the previous screen's handler. Here the handler
 * and the active flag are read from a ref that each render updates.
 */
import { useCallback, useRef } from 'react';
import { useInput, type Key } from 'ink';

export type KeyHandler = (input: string, key: Key) => void;

export function useKeys(handler: KeyHandler, active = true): void {
  const latest = useRef({ handler, active });
  latest.current = { handler, active };
  const dispatch = useCallback((input: string, key: Key) => {
    if (latest.current.active) latest.current.handler(input, key);
  }, []);
  useInput(dispatch);
}
