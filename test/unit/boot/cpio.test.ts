import { readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { BugError } from '../../../src/core/errors.js';
import { writeNewcCpio, type CpioEntry } from '../../../src/boot/cpio.js';
import { explainSkip, needsCommands } from '../../support/tier.js';
import { testDir } from '../../support/temp-tree.js';

const entries: CpioEntry[] = [
  { kind: 'directory', path: 'etc' },
  { kind: 'directory', path: 'etc/private', mode: 0o700 },
  { kind: 'file', path: 'etc/private/secret', content: 'x', mode: 0o600 },
  // Lengths 0..5 exercise every padding case of names and data.
  { kind: 'file', path: 'etc/a', content: '' },
  { kind: 'file', path: 'etc/bb', content: 'bb\n' },
  { kind: 'file', path: 'etc/ccc', content: new Uint8Array([0, 1, 2, 3, 255]) },
  { kind: 'file', path: 'etc/run.sh', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  { kind: 'symlink', path: 'etc/link', target: '../somewhere/else' },
];

describe('newc cpio writer (pure)', () => {
  it('aligns every header to 4 bytes and ends with the trailer', () => {
    const bytes = writeNewcCpio(entries);
    expect(bytes.length % 4).toBe(0);
    const text = Buffer.from(bytes).toString('latin1');
    expect(text.startsWith('070701')).toBe(true);
    expect(text).toContain('TRAILER!!!\0');
    let at = 0;
    let count = 0;
    while (at < bytes.length) {
      expect(text.slice(at, at + 6)).toBe('070701');
      const field = (i: number): number => parseInt(text.slice(at + 6 + i * 8, at + 14 + i * 8), 16);
      const nameSize = field(11);
      const fileSize = field(6);
      const name = text.slice(at + 110, at + 110 + nameSize - 1);
      count++;
      at += 110 + nameSize;
      at += (4 - (at % 4)) % 4;
      at += fileSize;
      at += (4 - (at % 4)) % 4;
      if (name === 'TRAILER!!!') break;
    }
    expect(count).toBe(entries.length + 1);
    expect(at).toBe(bytes.length);
  });

  it('is reproducible', () => {
    expect(Buffer.from(writeNewcCpio(entries)).equals(Buffer.from(writeNewcCpio(entries)))).toBe(true);
  });

  it.each([
    ['an absolute path', [{ kind: 'directory', path: '/etc' }]],
    ['a dot-dot path', [{ kind: 'directory', path: 'etc/../x' }]],
    ['a child before its directory', [{ kind: 'file', path: 'etc/x', content: '' }]],
    ['a duplicate', [{ kind: 'directory', path: 'etc' }, { kind: 'directory', path: 'etc' }]],
  ] as [string, CpioEntry[]][])('refuses %s', (_what, bad) => {
    expect(() => writeNewcCpio(bad)).toThrow(BugError);
  });
});

describe.skipIf(explainSkip('unit', needsCommands('cpio')))('newc cpio writer, extracted by cpio(1)', () => {
  let dir: string;
  beforeEach(() => {
    dir = testDir('cpio');
  });

  it('gives back every directory, file, mode and symlink', async () => {
    const archive = join(dir, 'a.cpio');
    writeFileSync(archive, writeNewcCpio(entries));
    const out = join(dir, 'out');
    await run({ description: 'mkdir', argv: ['mkdir', out] });
    const listing = await run({
      description: 'Extracting the archive',
      argv: ['sh', '-c', `cd '${out}' && cpio -idv --no-absolute-filenames < '${archive}'`],
    });
    expect(listing.stderr).not.toMatch(/warning|error/i);
    expect(statSync(join(out, 'etc/private')).mode & 0o7777).toBe(0o700);
    expect(statSync(join(out, 'etc/private/secret')).mode & 0o7777).toBe(0o600);
    expect(readFileSync(join(out, 'etc/private/secret'), 'utf8')).toBe('x');
    expect(readFileSync(join(out, 'etc/a'), 'utf8')).toBe('');
    expect(readFileSync(join(out, 'etc/bb'), 'utf8')).toBe('bb\n');
    expect([...readFileSync(join(out, 'etc/ccc'))]).toEqual([0, 1, 2, 3, 255]);
    expect(statSync(join(out, 'etc/run.sh')).mode & 0o7777).toBe(0o755);
    expect(readlinkSync(join(out, 'etc/link'))).toBe('../somewhere/else');
  });
});
