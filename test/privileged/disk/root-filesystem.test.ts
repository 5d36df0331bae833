/**
 * The root filesystem written from a directory into a disk image at an offset, with no
 * mount: owners, modes, hardlinks and security.capability must survive.
 */
import { chownSync, linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { UserError } from '../../../src/core/errors.js';
import { makeRootFilesystem, measureTree } from '../../../src/disk/root-filesystem.js';
import { explainSkip, needsCommands, needsRoot } from '../../support/tier.js';
import { suiteDir } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('mkfs.ext4', 'debugfs', 'mkfs.btrfs', 'btrfs', 'setcap'));
const MiB = 1024 * 1024;
const UUID = '6b1d7a0e-5c1f-4a34-9d7e-3f1e2b1a0c01';

describe.skipIf(skip)('root filesystem from a staged tree', () => {
  let tmp: string;
  let tree: string;
  const scratch = suiteDir('rootfs');
  beforeAll(async () => {
    tmp = scratch.path;
    tree = join(tmp, 'tree');
    mkdirSync(join(tree, 'usr/bin'), { recursive: true });
    writeFileSync(join(tree, 'usr/bin/tool'), 'x'.repeat(10_000), { mode: 0o4755 });
    linkSync(join(tree, 'usr/bin/tool'), join(tree, 'usr/bin/tool-link'));
    writeFileSync(join(tree, 'owned'), 'o');
    chownSync(join(tree, 'owned'), 1234, 5678);
    symlinkSync('usr/bin/tool', join(tree, 'link'));
    await run({ description: 'Setting a capability', argv: ['setcap', 'cap_net_raw+ep', join(tree, 'usr/bin/tool')] });
  });

  it('counts a hardlinked file once', async () => {
    const size = await measureTree(tree);
    // tree, usr, usr/bin, tool (3 blocks), owned, link
    expect(size.inodes).toBe(6);
    expect(size.dataBytes).toBe(3 * 4096 + 3 * 4096 + 4096);
  });

  it('ext4 at an offset keeps owners, modes, hardlinks and capabilities', async () => {
    const image = join(tmp, 'ext4.img');
    const f = await open(image, 'w');
    await f.truncate(200 * MiB);
    await f.close();
    await makeRootFilesystem('ext4', tree, { image, offsetBytes: 3 * MiB, sizeBytes: 64 * MiB, uuid: UUID }, tmp);
    const at = `${image}?offset=${3 * MiB}`;
    await run({ description: 'Checking', argv: ['e2fsck', '-fn', at] });
    const debugfs = async (cmd: string) => (await run({ description: cmd, argv: ['debugfs', '-R', cmd, at] })).stdout;
    const tool = await debugfs('stat /usr/bin/tool');
    expect(tool).toMatch(/Mode:\s+04755/);
    expect(tool).toMatch(/Links: 2/);
    expect(tool).toContain('security.capability');
    expect(await debugfs('stat /owned')).toMatch(/User:\s+1234\s+Group:\s+5678/);
    const inode = (await debugfs('ls -l /usr/bin')).match(/^\s*(\d+)\s+104755/gm);
    expect(inode?.length).toBe(2);
    expect(new Set(inode?.map((l) => l.trim().split(/\s+/)[0])).size).toBe(1);
    expect(await debugfs('stat /link')).toContain('Fast link dest: "usr/bin/tool"');
  });

  it('ext4 has the features, label and UUID of a plain mkfs.ext4, and its large directories are indexed', async () => {
    const big = join(tmp, 'big-tree');
    mkdirSync(join(big, 'many'), { recursive: true });
    for (let i = 0; i < 3000; i++) writeFileSync(join(big, 'many', `file-with-a-long-name-${i}`), `${i}`);
    const image = join(tmp, 'ext4-big.img');
    const f = await open(image, 'w');
    await f.truncate(200 * MiB);
    await f.close();
    await makeRootFilesystem('ext4', big, { image, offsetBytes: MiB, sizeBytes: 128 * MiB, uuid: UUID }, tmp);
    const at = `${image}?offset=${MiB}`;
    await run({ description: 'Checking', argv: ['e2fsck', '-fn', at] });
    const plain = join(tmp, 'ext4-plain.img');
    await run({ description: 'A plain mkfs.ext4', argv: ['mkfs.ext4', '-q', '-F', plain, `${128 * 1024}k`] });
    const header = async (device: string) => (await run({ description: 'dumpe2fs', argv: ['dumpe2fs', '-h', device] })).stdout;
    const field = (text: string, name: string) => text.match(new RegExp(`^${name}:\\s+(.*)$`, 'm'))?.[1];
    const ours = await header(at);
    expect(field(ours, 'Filesystem features')).toBe(field(await header(plain), 'Filesystem features'));
    expect(field(ours, 'Filesystem features')).toContain('metadata_csum');
    expect(field(ours, 'Filesystem UUID')).toBe(UUID);
    expect(field(ours, 'Filesystem volume name')).toBe('root');
    const many = (await run({ description: 'stat', argv: ['debugfs', '-R', 'stat /many', at] })).stdout;
    const EXT4_INDEX_FL = 0x1000; // the directory has a hash-tree index
    expect(Number(many.match(/Flags: (0x[0-9a-f]+)/)?.[1]) & EXT4_INDEX_FL).toBe(EXT4_INDEX_FL);
    const listing = (await run({ description: 'ls', argv: ['debugfs', '-R', 'ls -p /many', at] })).stdout;
    expect(listing.split('\n').filter((l) => l.includes('file-with-a-long-name-')).length).toBe(3000);
  });

  it('btrfs copied in at an offset keeps the hardlink and the capability', async () => {
    const image = join(tmp, 'btrfs.img');
    const f = await open(image, 'w');
    await f.truncate(400 * MiB);
    await f.close();
    await makeRootFilesystem('btrfs', tree, { image, offsetBytes: 2 * MiB, sizeBytes: 256 * MiB, uuid: UUID }, tmp);
    const part = join(tmp, 'btrfs.part');
    await run({ description: 'Extracting', argv: ['dd', `if=${image}`, `of=${part}`, `bs=${MiB}`, 'skip=2', 'count=256', 'status=none'] });
    await run({ description: 'Checking', argv: ['btrfs', 'check', '--readonly', part] });
    const dump = (await run({ description: 'Dumping', argv: ['btrfs', 'inspect-internal', 'dump-tree', '-t', 'fs', part] })).stdout;
    expect(dump).toMatch(/name: tool-link/);
    expect(dump).toMatch(/name: security\.capability/);
    const uuid = (await run({ description: 'UUID', argv: ['blkid', '-p', '-o', 'value', '-s', 'UUID', part] })).stdout.trim();
    expect(uuid).toBe(UUID);
  });

  it('refuses xfs', async () => {
    await expect(
      makeRootFilesystem('xfs', tree, { image: join(tmp, 'x.img'), offsetBytes: 0, sizeBytes: MiB, uuid: UUID }, tmp),
    ).rejects.toThrow(UserError);
  });
});
