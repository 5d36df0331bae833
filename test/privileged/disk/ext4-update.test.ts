/**
 * An ext4 filesystem built from one staged tree, updated in place (debugfs, no mount) to
 * hold another, against a filesystem built whole from the second: mounted read-only, the two
 * must list the same entries (type, mode, owner, size, link count, symlink target), the same
 * contents and the same xattrs. The second tree changes what a rebuild can change: objects
 * added, removed and moved (several names each), a file's content, a symlink's target, a
 * directory's mode, a file turned into a directory and back, a removed directory with its
 * contents, names with spaces and quotes, a device and a fifo, attributes (a capability, a
 * user and a trusted xattr), the deployment's id, and 300 new names in a directory whose
 * one block is full (debugfs cannot link into it until it is expanded).
 */
import { chmodSync, chownSync, linkSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { applyTreeUpdate, planTreeUpdate, type TreeUpdatePlan } from '../../../src/disk/ext4-update.js';
import type { Xattr } from '../../../src/store/object-id.js';
import { makeRootFilesystem } from '../../../src/disk/root-filesystem.js';
import { writeTreeManifest, type ManifestAlias } from '../../../src/disk/tree-manifest.js';
import { explainSkip, needsCommands, needsLoopDevices, needsRoot } from '../../support/tier.js';
import { DISK_TMP, suiteDir } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot() ?? needsLoopDevices() ?? needsCommands('mkfs.ext4', 'debugfs', 'e2fsck', 'stdbuf', 'getfattr', 'setfattr', 'setcap', 'mount'));
const MiB = 1024 * 1024;
const OFFSET = MiB;
const SIZE = 64 * MiB;
const DEPLOY = '/bootc/deploy/default';

/** The first tree: a store of objects, each also named in the deployment `aaaa.0`. */
function firstTree(root: string): void {
  const objects = join(root, 'bootc/objects');
  const deployment = join(root, 'bootc/deploy/default/aaaa.0');
  for (const dir of ['usr/bin', 'usr/lib/gone', 'usr/share/doc', 'etc', 'var/full', 'opt/turns-dir']) mkdirSync(join(deployment, dir), { recursive: true });
  mkdirSync(objects, { recursive: true });
  const object = (name: string, content: string, names: string[], mode = 0o644, uid = 0): void => {
    writeFileSync(join(objects, name), content, { mode });
    chmodSync(join(objects, name), mode);
    chownSync(join(objects, name), uid, uid);
    for (const n of names) linkSync(join(objects, name), join(deployment, n));
  };
  object('kept', 'kept\n', ['usr/bin/kept']);
  object('moved', 'moved\n', ['usr/bin/moved', 'usr/share/doc/moved']);
  object('vanishing', 'vanishing\n', ['usr/lib/gone/a', 'usr/lib/gone/b', 'usr/bin/vanishing']);
  object('owned', 'owned\n', ['etc/owned'], 0o600, 1234);
  object('turns-dir', 'file now\n', ['opt/turns-file']);
  object('plenty', 'linked many times\n', ['usr/bin/plenty']);
  // A directory whose one block is nearly full of names (80 of 48 bytes: no index).
  for (let i = 0; i < 80; i++) writeFileSync(join(deployment, 'var/full', `occupant-with-a-long-name-${String(i).padStart(3, '0')}`), `${i}`);
  writeFileSync(join(deployment, 'opt/turns-dir/inside'), 'inside\n');
  writeFileSync(join(root, 'bootc/deploy/default/aaaa.0.origin'), '{"image":"a"}\n');
  symlinkSync('kept', join(deployment, 'usr/bin/link'));
  chmodSync(join(deployment, 'usr/share'), 0o755);
}

/** The first tree turned into the second, in place (its unchanged objects keep their inodes, as a store's do): the changes a rebuild can bring, deployment `bbbb.0`. */
function intoSecondTree(root: string): void {
  const objects = join(root, 'bootc/objects');
  rmSync(join(root, 'bootc/deploy/default/aaaa.0.origin'));
  renameSync(join(root, 'bootc/deploy/default/aaaa.0'), join(root, 'bootc/deploy/default/bbbb.0'));
  const deployment = join(root, 'bootc/deploy/default/bbbb.0');
  writeFileSync(join(root, 'bootc/deploy/default/bbbb.0.origin'), '{"image":"b"}\n');
  // moved: one name gone, another added elsewhere
  rmSync(join(deployment, 'usr/share/doc/moved'));
  mkdirSync(join(deployment, 'usr/share/moved-here'));
  linkSync(join(objects, 'moved'), join(deployment, 'usr/share/moved-here/moved'));
  // vanishing: every name gone, its directory too
  rmSync(join(objects, 'vanishing'));
  rmSync(join(deployment, 'usr/bin/vanishing'));
  rmSync(join(deployment, 'usr/lib/gone'), { recursive: true });
  // a new object with three names, one with a space and a quote
  writeFileSync(join(objects, 'new'), 'new\n'.repeat(5000), { mode: 0o755 });
  chmodSync(join(objects, 'new'), 0o755);
  linkSync(join(objects, 'new'), join(deployment, 'usr/bin/new'));
  linkSync(join(objects, 'new'), join(deployment, 'usr/bin/new "quoted" name'));
  // content changed at the same path (a different object)
  rmSync(join(deployment, 'usr/bin/kept'));
  writeFileSync(join(objects, 'kept2'), 'kept, changed\n');
  linkSync(join(objects, 'kept2'), join(deployment, 'usr/bin/kept'));
  // types turned around
  rmSync(join(deployment, 'opt/turns-dir'), { recursive: true });
  linkSync(join(objects, 'turns-dir'), join(deployment, 'opt/turns-dir'));
  rmSync(join(deployment, 'opt/turns-file'));
  mkdirSync(join(deployment, 'opt/turns-file/sub'), { recursive: true });
  // metadata and special files
  chmodSync(join(deployment, 'usr/share'), 0o750);
  rmSync(join(deployment, 'usr/bin/link'));
  symlinkSync('new', join(deployment, 'usr/bin/link'));
  // 300 more names of one object: half in the full directory, half in a new one (debugfs
  // makes it with one block and no index, and cannot link into it once that is full)
  mkdirSync(join(deployment, 'var/many'));
  for (let i = 0; i < 300; i++) linkSync(join(objects, 'plenty'), join(deployment, i < 150 ? 'var/full' : 'var/many', `plenty-${String(i).padStart(3, '0')}`));
}

async function specialFiles(root: string, deployment: string): Promise<void> {
  await run({ description: 'mknod', argv: ['mknod', join(root, deployment, 'usr/null'), 'c', '1', '3'] });
  await run({ description: 'mkfifo', argv: ['mkfifo', join(root, deployment, 'usr/fifo')] });
  await run({ description: 'setcap', argv: ['setcap', 'cap_net_raw+ep', join(root, 'bootc/objects/new')] });
  await run({ description: 'setfattr', argv: ['setfattr', '-n', 'user.note', '-v', 'hello', join(root, deployment, 'usr/share/moved-here')] });
  await run({ description: 'setfattr', argv: ['setfattr', '-n', 'trusted.note', '-v', '0x00ff', join(root, deployment, 'etc/owned')] });
}

async function filesystemOf(image: string, tree: string): Promise<void> {
  const file = await open(image, 'w');
  await file.truncate(OFFSET + SIZE);
  await file.close();
  await makeRootFilesystem('ext4', tree, { image, offsetBytes: OFFSET, sizeBytes: SIZE, uuid: '6b1d7a0e-5c1f-4a34-9d7e-3f1e2b1a0c01' }, join(tree, '..'));
}

/** The filesystem's content, mounted read-only: one line per entry, contents and xattrs; no times, no inode numbers. */
async function listing(image: string, mountpoint: string): Promise<string[]> {
  await run({ description: 'mount', argv: ['mount', '-o', `ro,loop,offset=${OFFSET},sizelimit=${SIZE}`, image, mountpoint] });
  try {
    const { stdout: entries } = await run({ description: 'find', argv: ['find', '.', '-printf', '%P\t%y\t%m\t%U\t%G\t%s\t%n\t%l\n'], cwd: mountpoint });
    const { stdout: hashes } = await run({ description: 'sha256sum', argv: ['sh', '-c', 'find . -type f -print0 | sort -z | xargs -0 -r sha256sum'], cwd: mountpoint });
    const { stdout: xattrs } = await run({ description: 'getfattr', argv: ['sh', '-c', 'getfattr -R -P -d -m - -e hex . 2>/dev/null || true'], cwd: mountpoint });
    // A directory's size depends on how its blocks were filled, not on what it holds.
    const normalised = entries.split('\n').map((l) => (l.split('\t')[1] === 'd' ? l.split('\t').filter((_, i) => i !== 5).join('\t') : l));
    return [...normalised, ...hashes.split('\n'), ...xattrs.split('\n')].filter((l) => l !== '').sort();
  } finally {
    await run({ description: 'umount', argv: ['umount', mountpoint] });
  }
}

describe.skipIf(skip)('ext4 root filesystem updated in place from one tree to another', () => {
  const scratch = suiteDir('ext4-update', { under: DISK_TMP });
  const path = (name: string): string => join(scratch.path, name);
  const aliasA: ManifestAlias = { dir: DEPLOY, name: 'aaaa.0' };
  const aliasB: ManifestAlias = { dir: DEPLOY, name: 'bbbb.0' };
  let updated: string[];
  let cold: string[];
  let added = 0;
  let removed = 0;
  let expansions = 0;
  let xattrs: Map<string, Xattr[]> = new Map();
  const planFromAToB = (maxChanges: number): TreeUpdatePlan | null =>
    planTreeUpdate({
      oldManifest: path('a.manifest'),
      newManifest: path('b.manifest'),
      sourceRoot: path('b'),
      oldAlias: aliasA,
      newAlias: aliasB,
      xattrs,
      workDir: path('work'),
      maxChanges,
    });

  beforeAll(async () => {
    mkdirSync(path('mnt'));
    mkdirSync(path('work'));
    firstTree(path('b'));
    await writeTreeManifest(path('b'), path('a.manifest'), aliasA);
    await filesystemOf(path('updated.img'), path('b'));
    intoSecondTree(path('b'));
    await specialFiles(path('b'), 'bootc/deploy/default/bbbb.0');
    const described = await writeTreeManifest(path('b'), path('b.manifest'), aliasB);
    await filesystemOf(path('cold.img'), path('b'));
    xattrs = described.xattrs;
    const plan = planFromAToB(10_000);
    expect(plan).not.toBeNull();
    added = plan!.added;
    removed = plan!.removed;
    expansions = (await applyTreeUpdate(`${path('updated.img')}?offset=${OFFSET}`, plan!, path('work'))).expansions;
    await run({ description: 'e2fsck', argv: ['e2fsck', '-f', '-n', `${path('updated.img')}?offset=${OFFSET}`] });
    updated = await listing(path('updated.img'), path('mnt'));
    cold = await listing(path('cold.img'), path('mnt'));
  }, 120_000);

  it('changes only what differs', () => {
    // 300 names in var/full and var/many, the new object's 3 names, the moved name and its directory, the
    // changed file (its object too), the turned types (3), the symlink, the origin, the
    // owned object's 2 names (an xattr added), the device and the fifo; and the old kept
    // object, left with one name (a file of one link is described by its content, not its
    // inode); var/many
    expect(added).toBe(318);
    // the vanished object's 3 names, its object and directory, the moved name, the changed
    // file, the turned types (3), the symlink, the origin, the owned object's 2 names, the old kept object
    expect(removed).toBe(15);
    // The full directory: the links failed, it was expanded, they were made again.
    expect(expansions).toBeGreaterThan(0);
  });

  it('gives the files a filesystem built whole from the second tree has', () => {
    expect(updated.length).toBeGreaterThan(400);
    expect(updated.filter((l) => !cold.includes(l))).toEqual([]);
    expect(cold.filter((l) => !updated.includes(l))).toEqual([]);
    // What the comparison covers: the renamed deployment, the new object's links, its capability, the changed mode.
    expect(updated).toContain('bootc/deploy/default/bbbb.0/usr/bin/new "quoted" name\tf\t755\t0\t0\t20000\t3\t');
    expect(updated.some((l) => l.startsWith('security.capability='))).toBe(true);
    expect(updated.some((l) => l.startsWith('bootc/deploy/default/bbbb.0/usr/share\td\t750'))).toBe(true);
    expect(updated.some((l) => l.startsWith('bootc/deploy/default/bbbb.0/var/many/plenty-299\tf\t644\t0\t0\t18\t302'))).toBe(true);
  });

  it('refuses a tree with a name no manifest line can carry', async () => {
    mkdirSync(path('odd'));
    writeFileSync(path('odd/line\nbreak'), '');
    await expect(writeTreeManifest(path('odd'), path('odd.manifest'))).rejects.toThrow(/a name with a control character/);
  });

  it('gives up when more changes than the limit', () => {
    expect(planFromAToB(50)).toBeNull();
  });
});
