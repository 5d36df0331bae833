/**
 * Key handling that never sees a stale screen. Ink's useInput subscribes in an effect that
 * runs some time after a render, so a key arriving right after a screen change (a burst
 * from a paste, `tmux send-keys`, a serial line catching up) could reach the old screen or
 * nobody. Here one subscription routes each key to handlers registered during render and
 * removed when their component unmounts (layout effect: at commit, not later); screens
 * keep what their handlers read in useStateRef, so a key sees the previous key's effect
 * even before React has rendered it.
 */
import { createContext, useCallback, useContext, useLayoutEffect, useRef, useState, type ReactNode } from 'react';
import { useInput, type Key } from 'ink';
import { BugError } from '../core/errors.js';

export type KeyHandler = (input: string, key: Key) => void;

class KeyRouter {
  readonly handlers = new Map<number, { handler: KeyHandler; active: boolean }>();
  private nextId = 0;
  newId(): number {
    return this.nextId++;
  }
  dispatch(input: string, key: Key): void {
    // A handler may change the screen: later handlers of this key are the ones that were there when it came.
    for (const id of [...this.handlers.keys()]) {
      const current = this.handlers.get(id);
      if (current?.active) current.handler(input, key);
    }
  }
}

const KeyRouterContext = createContext<KeyRouter | null>(null);

export function KeyRouterProvider({ children }: { children: ReactNode }) {
  const router = useRef<KeyRouter | null>(null);
  router.current ??= new KeyRouter();
  const r = router.current;
  useInput((input, key) => r.dispatch(input, key));
  return <KeyRouterContext.Provider value={r}>{children}</KeyRouterContext.Provider>;
}

export function useKeys(handler: KeyHandler, active = true): void {
  const router = useContext(KeyRouterContext);
  if (!router) throw new BugError('useKeys outside KeyRouterProvider');
  const id = useRef<number | null>(null);
  id.current ??= router.newId();
  router.handlers.set(id.current, { handler, active });
  useLayoutEffect(() => {
    const mine = id.current!;
    return () => {
      router.handlers.delete(mine);
    };
  }, [router]);
}

/**
 * State whose latest value key handlers read at once: when keys come faster than renders,
 * the second key must see what the first one did (the field it moved to, the text so far).
 */
export function useStateRef<T>(initial: T): [T, (next: T | ((prev: T) => T)) => T, { readonly current: T }] {
  const [value, setValue] = useState(initial);
  const ref = useRef(value);
  const set = useCallback((next: T | ((prev: T) => T)): T => {
    ref.current = typeof next === 'function' ? (next as (prev: T) => T)(ref.current) : next;
    setValue(ref.current);
    return ref.current;
  }, []);
  return [value, set, ref];
}
