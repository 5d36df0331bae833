import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeTree } from '../../../src/core/remove-tree.js';
import { testDir, writeTree } from '../../support/temp-tree.js';

describe('removeTree', () => {
  it('removes a tree with read-only directories, symlinks and many entries', async () => {
    const dir = testDir('remove-tree');
    const root = join(dir, 'root');
    writeTree(root, { 'usr/bin/tool': 'x', 'usr/lib/link': { symlink: '../bin/tool' }, 'etc/hostname': 'h' });
    for (let i = 0; i < 2000; i++) writeFileSync(join(root, 'usr/lib', `f${i}`), '');
    chmodSync(join(root, 'usr/bin'), 0o555);
    await removeTree(root);
    expect(existsSync(root)).toBe(false);
    expect(existsSync(dir)).toBe(true);
  });

  it('is done when there is nothing to remove', async () => {
    await expect(removeTree(join(testDir('remove-tree'), 'absent'))).resolves.toBeUndefined();
  });
});
