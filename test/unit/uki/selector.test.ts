import { mkdirSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  coveredBySelector,
  selectorInCmdline,
  selectorOf,
  selectorOfDirectory,
  selectorOfTree,
  type SelectorEntry,
} from '../../../src/uki/selector.js';
import type { TreeEntry } from '../../../src/store/index-format.js';
import { testDir } from '../../support/temp-tree.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('what the deployment selector covers', () => {
  it.each([
    ['usr', true],
    ['usr/bin/sh', true],
    ['usr/lib/modules/6.1.0/vmlinuz', true],
    ['usr/lib/modules/6.1.0/6.1.0.efi', false],
    ['usr/etc', false],
    ['usr/etc/passwd', false],
    ['usrx', false],
    ['etc/passwd', false],
    ['var/lib/x', false],
    ['boot/EFI/Linux/x.efi', false],
  ])('%s: %s', (path, covered) => {
    expect(coveredBySelector(path)).toBe(covered);
  });
});

describe('selectorOf', () => {
  const base: SelectorEntry[] = [
    { kind: 'dir', path: 'usr', mode: 0o40755, uid: 0, gid: 0, content: '' },
    { kind: 'file', path: 'usr/a', mode: 0o100644, uid: 0, gid: 0, content: sha('a') },
    { kind: 'symlink', path: 'usr/l', mode: 0o777, uid: 0, gid: 0, content: 'a' },
  ];

  it('is independent of entry order and of file type bits in the mode', () => {
    const reordered = [base[2]!, base[0]!, { ...base[1]!, mode: 0o644 }];
    expect(selectorOf(reordered)).toBe(selectorOf(base));
  });

  it.each([
    ['content', { ...base[1]!, content: sha('b') }],
    ['permissions', { ...base[1]!, mode: 0o100755 }],
    ['owner', { ...base[1]!, uid: 1 }],
  ])('changes with a file\'s %s', (_what, changed) => {
    expect(selectorOf([base[0]!, changed, base[2]!])).not.toBe(selectorOf(base));
  });

  it('ignores paths outside /usr and UKIs', () => {
    const more = [...base, { kind: 'file' as const, path: 'etc/x', mode: 0o644, uid: 0, gid: 0, content: sha('x') }];
    more.push({ kind: 'file', path: 'usr/lib/modules/k/k.efi', mode: 0o644, uid: 0, gid: 0, content: sha('uki') });
    expect(selectorOf(more)).toBe(selectorOf(base));
  });
});

describe('selector from a directory and from a tree index agree', () => {
  let dir: string;
  beforeEach(() => {
    dir = testDir('selector');
  });

  it('on a small tree (store objects stood in by plain files)', async () => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    mkdirSync(join(root, 'usr/etc'), { recursive: true });
    mkdirSync(join(root, 'usr/lib/modules/k'), { recursive: true });
    writeFileSync(join(root, 'usr/bin/tool'), 'tool');
    chmodSync(join(root, 'usr/bin/tool'), 0o755);
    writeFileSync(join(root, 'usr/etc/ignored'), 'x');
    writeFileSync(join(root, 'usr/lib/modules/k/vmlinuz'), 'kernel');
    writeFileSync(join(root, 'usr/lib/modules/k/k.efi'), 'uki');
    symlinkSync('bin/tool', join(root, 'usr/link'));
    const objects = join(dir, 'objects');
    mkdirSync(objects);
    writeFileSync(join(objects, 'o-tool'), 'tool');
    writeFileSync(join(objects, 'o-kernel'), 'kernel');
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const entries: TreeEntry[] = [
      { kind: 'dir', path: 'usr', mode: 0o755, uid, gid, xattrs: [] },
      { kind: 'dir', path: 'usr/bin', mode: 0o755, uid, gid, xattrs: [] },
      { kind: 'file', path: 'usr/bin/tool', object: 'o-tool', mode: 0o755, uid, gid, size: 4, xattrs: [] },
      { kind: 'dir', path: 'usr/lib', mode: 0o755, uid, gid, xattrs: [] },
      { kind: 'dir', path: 'usr/lib/modules', mode: 0o755, uid, gid, xattrs: [] },
      { kind: 'dir', path: 'usr/lib/modules/k', mode: 0o755, uid, gid, xattrs: [] },
      { kind: 'file', path: 'usr/lib/modules/k/vmlinuz', object: 'o-kernel', mode: 0o644, uid, gid, size: 6, xattrs: [] },
      { kind: 'symlink', path: 'usr/link', target: 'bin/tool', uid, gid, xattrs: [] },
    ];
    for (const d of ['usr', 'usr/bin', 'usr/lib', 'usr/lib/modules', 'usr/lib/modules/k']) chmodSync(join(root, d), 0o755);
    chmodSync(join(root, 'usr/lib/modules/k/vmlinuz'), 0o644);
    const fromDir = await selectorOfDirectory(root);
    expect(fromDir).toMatch(/^[0-9a-f]{64}$/);
    expect(await selectorOfTree(entries, (id) => join(objects, id))).toBe(fromDir);
    writeFileSync(join(root, 'usr/bin/tool'), 'tool2');
    expect(await selectorOfDirectory(root)).not.toBe(fromDir);
  });
});

describe('selectorInCmdline', () => {
  it('finds the last selector argument', () => {
    expect(selectorInCmdline('rw bootc.deploy-selector=aa quiet bootc.deploy-selector=bb')).toBe('bb');
    expect(selectorInCmdline('rw quiet')).toBeNull();
  });
});
