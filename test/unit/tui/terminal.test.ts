import { describe, expect, it } from 'vitest';
import { splitKeys } from '../../../src/tui/paced-input.js';

describe('splitKeys', () => {
  it('keeps escape sequences whole and splits text per character', () => {
    expect(splitKeys('\x1b[B\x1b[Babc\r')).toEqual(['\x1b[B', '\x1b[B', 'a', 'b', 'c', '\r']);
    expect(splitKeys('\x1b[3~x')).toEqual(['\x1b[3~', 'x']);
    expect(splitKeys('\x1bOA')).toEqual(['\x1bOA']);
    expect(splitKeys('\x1b[[A')).toEqual(['\x1b[[A']);
    expect(splitKeys('\x1b')).toEqual(['\x1b']);
    expect(splitKeys('é😀')).toEqual(['é', '😀']);
  });
});

describe('plain mode and the log book', async () => {
  const { wantsPlain } = await import('../../../src/tui/run.js');
  const { LogBook } = await import('../../../src/tui/services.js');

  it('is plain with --plain, NO_COLOR (non-empty) or TERM=dumb', () => {
    expect(wantsPlain(true, {})).toBe(true);
    expect(wantsPlain(false, { NO_COLOR: '1' })).toBe(true);
    expect(wantsPlain(false, { NO_COLOR: '' })).toBe(false);
    expect(wantsPlain(false, { TERM: 'dumb' })).toBe(true);
    expect(wantsPlain(false, { TERM: 'xterm-256color' })).toBe(false);
  });

  it('keeps whole lines, the last state of a redrawn line, and persists everything', () => {
    const persisted: string[] = [];
    const log = new LogBook(3, (t) => persisted.push(t));
    log.write('one\ntw');
    log.write('o\n10%\r50%\r\x1b[32mdone\x1b[0m\nfour\nfive\n');
    expect(log.tail(10)).toEqual(['done', 'four', 'five']);
    expect(persisted.join('')).toBe('one\ntwo\n10%\r50%\r\x1b[32mdone\x1b[0m\nfour\nfive\n');
  });
});
