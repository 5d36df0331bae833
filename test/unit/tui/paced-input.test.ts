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
