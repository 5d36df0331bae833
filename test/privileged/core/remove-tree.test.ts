/** removeTree never empties a filesystem mounted inside the tree it removes. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { removeTree } from '../../../src/core/remove-tree.js';
import { explainSkip, needsRoot } from '../../support/tier.js';
import { testDir } from '../../support/temp-tree.js';

const skipMount = explainSkip('privileged', needsRoot());

describe.skipIf(skipMount)('removeTree with a filesystem mounted inside', () => {
  let mounted: string | undefined;
  afterEach(async () => {
    if (mounted) await run({ description: 'Unmounting', argv: ['umount', mounted] });
    mounted = undefined;
  });

  it('fails and leaves the mounted filesystem as it was', async () => {
    const dir = testDir('remove-tree');
    const root = join(dir, 'root');
    mkdirSync(join(root, 'var'), { recursive: true });
    writeFileSync(join(root, 'file'), 'f');
    await run({ description: 'Mounting a tmpfs', argv: ['mount', '-t', 'tmpfs', 'tmpfs', join(root, 'var')] });
    mounted = join(root, 'var');
    writeFileSync(join(root, 'var', 'keep'), 'kept');
    await expect(removeTree(root)).rejects.toThrow(/Removing .*root/);
    expect(readFileSync(join(root, 'var', 'keep'), 'utf8')).toBe('kept');
    expect(existsSync(join(root, 'file'))).toBe(false);
  });
});
