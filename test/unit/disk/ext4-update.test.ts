/**
 * The pure parts of updating an ext4 filesystem in place: manifest order, manifest lines,
 * debugfs quoting, and reading debugfs's output for the commands that failed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { failedCommands, planTreeUpdate, quoteArg } from '../../../src/disk/ext4-update.js';
import { MANIFEST_HEADER, comparePaths, formatEntry, manifestLines, parseEntry, type ManifestEntry } from '../../../src/disk/tree-manifest.js';
import { tempDir } from '../../support/temp-tree.js';

describe('manifest order', () => {
  it('is a depth-first walk with sorted names: a directory\'s entries come before its next sibling', () => {
    const paths = ['/a.c', '/', '/a/b', '/a', '/a b', '/a/b/c', '/b'];
    expect([...paths].sort(comparePaths)).toEqual(['/', '/a', '/a/b', '/a/b/c', '/a b', '/a.c', '/b']);
  });
});

describe('manifest lines', () => {
  it('round-trip an entry, mode in octal', () => {
    const entry: ManifestEntry = { path: '/usr/bin/su', type: 'f', identity: 'i12.34.5.4755.0.0.0.', mode: 0o4755, uid: 0, gid: 0, mtime: 0, xattrs: '-' };
    expect(formatEntry(entry)).toBe('/usr/bin/su\tf\ti12.34.5.4755.0.0.0.\t4755\t0\t0\t0\t-');
    expect(parseEntry(formatEntry(entry))).toEqual(entry);
  });

  it('are read across chunk boundaries, and a file that is not a manifest is refused', () => {
    using dir = tempDir('manifest-lines');
    const lines = Array.from({ length: 40_000 }, (_, i) => `/dir/ü-${i}\tf\th${'0'.repeat(64)}\t644\t0\t0\t0\t-`);
    writeFileSync(join(dir.path, 'm'), [MANIFEST_HEADER, ...lines].join('\n') + '\n');
    expect([...manifestLines(join(dir.path, 'm'))]).toEqual(lines);
    writeFileSync(join(dir.path, 'other'), 'not a manifest\n');
    expect(() => [...manifestLines(join(dir.path, 'other'))]).toThrow(/is not a tree manifest/);
    writeFileSync(join(dir.path, 'cut'), `${MANIFEST_HEADER}\n/a\td`);
    expect(() => [...manifestLines(join(dir.path, 'cut'))]).toThrow(/ends in the middle of a line/);
  });
});

describe('debugfs scripts', () => {
  it('quote an argument, doubling a quote inside it', () => {
    expect(quoteArg('/a b/say "hi"')).toBe('"/a b/say ""hi"""');
  });

  it('find the commands debugfs reported errors for, whatever it printed for the others', () => {
    const output = [
      'debugfs 1.47.0 (5-Feb-2023)',
      'debugfs: write "/s/x" "/x"',
      'Allocated inode: 12',
      'debugfs: ln "/x" "/full/y"',
      'make_link: No free space in the directory ',
      'debugfs: sif "/x" links_count 2',
      'debugfs: rm "/missing"',
      'rm: File not found by ext2_lookup while trying to resolve filename',
      '',
    ].join('\n');
    expect(failedCommands(output)).toEqual([
      { command: 'ln "/x" "/full/y"', message: 'make_link: No free space in the directory' },
      { command: 'rm "/missing"', message: 'rm: File not found by ext2_lookup while trying to resolve filename' },
    ]);
  });

  it('renames the deployment first, frees what is gone, and adds parents before children', () => {
    using dir = tempDir('plan');
    const line = (path: string, type: string, identity: string, mode = '755'): string => `${path}\t${type}\t${identity}\t${mode}\t0\t0\t0\t-`;
    const manifest = (name: string, lines: string[]): string => {
      writeFileSync(join(dir.path, name), [MANIFEST_HEADER, ...lines].join('\n') + '\n');
      return join(dir.path, name);
    };
    const dep = '/bootc/deploy/default';
    const oldManifest = manifest('old', [
      line('/', 'd', '-'),
      line('/bootc', 'd', '-'),
      line('/bootc/deploy', 'd', '-'),
      line(dep, 'd', '-'),
      line(`${dep}/@`, 'd', '-'),
      line(`${dep}/@/gone`, 'f', 'i9.1.1.644.0.0.0.', '644'),
      line(`${dep}/@/kept`, 'f', 'hkept', '644'),
      line(`${dep}/@.origin`, 'f', 'hold', '644'),
      line('/bootc/objects', 'd', '-'),
      line('/bootc/objects/9', 'f', 'i9.1.1.644.0.0.0.', '644'),
    ]);
    const newManifest = manifest('new', [
      line('/', 'd', '-'),
      line('/bootc', 'd', '-'),
      line('/bootc/deploy', 'd', '-'),
      line(dep, 'd', '-'),
      line(`${dep}/@`, 'd', '-'),
      line(`${dep}/@/kept`, 'f', 'hkept', '644'),
      line(`${dep}/@/new`, 'd', '-'),
      line(`${dep}/@/new/file`, 'f', 'hnew', '600'),
      line(`${dep}/@.origin`, 'f', 'hnew-origin', '644'),
      line('/bootc/objects', 'd', '-'),
    ]);
    const plan = planTreeUpdate({
      oldManifest,
      newManifest,
      sourceRoot: '/staged',
      oldAlias: { dir: dep, name: 'aaa.0' },
      newAlias: { dir: dep, name: 'bbb.0' },
      xattrs: new Map(),
      workDir: dir.path,
      maxChanges: 100,
    })!;
    expect(plan.commands).toEqual([
      `ln "${dep}/aaa.0" "${dep}/bbb.0"`,
      `unlink "${dep}/aaa.0"`,
      `ln "${dep}/aaa.0.origin" "${dep}/bbb.0.origin"`,
      `unlink "${dep}/aaa.0.origin"`,
      `kill_file "${dep}/bbb.0/gone"`,
      'unlink "/bootc/objects/9"',
      `rm "${dep}/bbb.0.origin"`,
      `unlink "${dep}/bbb.0/gone"`,
      `mkdir "${dep}/bbb.0/new"`,
      ...['mode 040755', 'uid 0', 'gid 0', 'mtime @0'].map((s) => `sif "${dep}/bbb.0/new" ${s}`),
      `write "/staged${dep}/bbb.0/new/file" "${dep}/bbb.0/new/file"`,
      ...['mode 0100600', 'uid 0', 'gid 0', 'mtime @0'].map((s) => `sif "${dep}/bbb.0/new/file" ${s}`),
      `write "/staged${dep}/bbb.0.origin" "${dep}/bbb.0.origin"`,
      ...['mode 0100644', 'uid 0', 'gid 0', 'mtime @0'].map((s) => `sif "${dep}/bbb.0.origin" ${s}`),
    ]);
    expect(plan.finish).toEqual([]);
    expect([plan.added, plan.removed]).toEqual([3, 3]);
  });
});
