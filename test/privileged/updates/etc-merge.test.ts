import { beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmod, chown, lstat, mkdir, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, unwrapContext } from '../../../src/core/errors.js';
import { mergeEtc, scanEtcTree, writeMergedEtc } from '../../../src/updates/etc-merge-apply.js';
import { describeEtcConflict, planEtcMerge } from '../../../src/updates/etc-merge.js';
import { explainSkip, needsCommands, needsRoot } from '../../support/tier.js';
import { testDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('setfattr', 'getfattr'));

/** security.capability granting cap_net_raw (effective, permitted), VFS_CAP_REVISION_2. */
const CAP_NET_RAW_HEX = '0x0100000200200000000000000000000000000000';

/** system.posix_acl_access: user::rw- user:1000:rwx group::r-- mask::rwx other::r-- */
const ACL_USER_1000_HEX = '0x02000000' + '01000600ffffffff' + '02000700e8030000' + '04000400ffffffff' + '10000700ffffffff' + '20000400ffffffff';

function setXattr(path: string, name: string, value: string): void {
  execFileSync('setfattr', ['-h', '-n', name, '-v', value, path]);
}

function xattrsOf(path: string): Record<string, string> {
  const out = execFileSync('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'hex', path], { encoding: 'utf8' });
  const r: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([^#=][^=]*)=(.*)$/.exec(line);
    if (m && m[1] !== 'security.selinux') r[m[1] as string] = m[2] as string;
  }
  return r;
}

async function put(root: string, rel: string, content: string, opts: { mode?: number; uid?: number; gid?: number } = {}): Promise<void> {
  const path = join(root, rel);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  await chown(path, opts.uid ?? 0, opts.gid ?? 0);
  await chmod(path, opts.mode ?? 0o644);
}

async function rootCause(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return unwrapContext(err).root;
  }
  throw new Error('expected a failure');
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

describe.skipIf(skip)('/etc merge on real directories', () => {
  let work: string;
  let oldDefault: string;
  let newDefault: string;
  let current: string;
  let destination: string;

  beforeEach(async () => {
    work = testDir('etc-merge', { under: DISK_TMP });
    oldDefault = join(work, 'old-usr-etc');
    newDefault = join(work, 'new-usr-etc');
    current = join(work, 'etc');
    destination = join(work, 'etc.merged');
    for (const d of [oldDefault, newDefault, current]) await mkdir(d, { mode: 0o755 });
  });

  async function buildTypicalTrees(): Promise<void> {
    // The booted image's defaults, copied unchanged into the live /etc.
    for (const root of [oldDefault, current]) {
      await put(root, 'hostname', 'image-host\n');
      await put(root, 'hosts', '127.0.0.1 localhost\n');
      await put(root, 'motd', 'welcome v1\n');
      await put(root, 'issue', 'Debian v1\n');
      await put(root, 'ssh/sshd_config', 'PermitRootLogin no\n');
      await put(root, 'cron.d/job', '* * * * * root true\n');
      await put(root, 'deleted.conf', 'v1\n');
      await put(root, 'ping-helper', 'binary v1\n', { mode: 0o755 });
      await symlink('/usr/share/zoneinfo/UTC', join(root, 'localtime'));
    }
    // The new image: changes what the user did not touch and some things the user did.
    await put(newDefault, 'hostname', 'image-host\n');
    await put(newDefault, 'hosts', '127.0.0.1 localhost\n::1 localhost\n');
    await put(newDefault, 'issue', 'Debian v2\n');
    await put(newDefault, 'ssh/sshd_config', 'PermitRootLogin no\nX11Forwarding no\n');
    await put(newDefault, 'cron.d', 'now a file\n');
    await put(newDefault, 'deleted.conf', 'v2\n');
    await put(newDefault, 'added-by-image.conf', 'new\n');
    await put(newDefault, 'ping-helper', 'binary v2\n', { mode: 0o4755 });
    setXattr(join(newDefault, 'ping-helper'), 'security.capability', CAP_NET_RAW_HEX);
    await symlink('/usr/share/zoneinfo/Etc/UTC', join(newDefault, 'localtime'));
    // The user's changes on the live /etc.
    await put(current, 'hostname', 'my-host\n');
    await put(current, 'hosts', '127.0.0.1 localhost\n10.0.0.1 nas\n');
    await chmod(join(current, 'ssh/sshd_config'), 0o600);
    await put(current, 'cron.d/mine', '0 * * * * root backup\n', { mode: 0o600 });
    await rm(join(current, 'deleted.conf'));
    await put(current, 'local.conf', 'mine\n', { mode: 0o640, uid: 1000, gid: 1000 });
    setXattr(join(current, 'local.conf'), 'user.note', '0x6b656570');
    await put(current, 'shared.conf', 'acl\n');
    setXattr(join(current, 'shared.conf'), 'system.posix_acl_access', ACL_USER_1000_HEX);
    await mkdir(join(current, 'private'), { mode: 0o700 });
    await chown(join(current, 'private'), 1000, 1000);
    await put(current, 'private/secret', 's\n', { mode: 0o400, uid: 1000, gid: 1000 });
    await chmod(join(current, 'private'), 0o500);
    await utimes(join(current, 'hostname'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
  }

  it('writes the merged /etc into a new directory: local changes win, untouched paths follow the image', async () => {
    await buildTypicalTrees();
    const { conflicts } = await mergeEtc({ oldDefault, newDefault, current }, destination);

    const text = (rel: string): Promise<string> => readFile(join(destination, rel), 'utf8');
    expect(await text('hostname')).toBe('my-host\n');
    expect(await text('hosts')).toBe('127.0.0.1 localhost\n10.0.0.1 nas\n');
    expect(await text('issue')).toBe('Debian v2\n');
    expect(await exists(join(destination, 'motd'))).toBe(false);
    expect(await exists(join(destination, 'deleted.conf'))).toBe(false);
    expect(await text('added-by-image.conf')).toBe('new\n');
    expect(await text('ssh/sshd_config')).toBe('PermitRootLogin no\n');
    expect((await stat(join(destination, 'ssh/sshd_config'))).mode & 0o7777).toBe(0o600);
    expect(await readlink(join(destination, 'localtime'))).toBe('/usr/share/zoneinfo/Etc/UTC');
    // The image made cron.d a file; the user's job in the directory keeps it a directory.
    expect((await lstat(join(destination, 'cron.d'))).isDirectory()).toBe(true);
    expect(await text('cron.d/mine')).toBe('0 * * * * root backup\n');
    expect(await exists(join(destination, 'cron.d/job'))).toBe(false);

    // Metadata: owner, mode (setuid survives the chown), xattrs, times.
    const helper = await stat(join(destination, 'ping-helper'));
    expect(helper.mode & 0o7777).toBe(0o4755);
    expect(xattrsOf(join(destination, 'ping-helper'))['security.capability']).toBe(CAP_NET_RAW_HEX);
    const local = await stat(join(destination, 'local.conf'));
    expect([local.uid, local.gid, local.mode & 0o7777]).toEqual([1000, 1000, 0o640]);
    expect(xattrsOf(join(destination, 'local.conf'))['user.note']).toBe('0x6b656570');
    expect(xattrsOf(join(destination, 'shared.conf'))['system.posix_acl_access']).toBe(ACL_USER_1000_HEX);
    expect((await stat(join(destination, 'shared.conf'))).mode & 0o7777).toBe(0o674);
    const priv = await stat(join(destination, 'private'));
    expect([priv.uid, priv.gid, priv.mode & 0o7777]).toEqual([1000, 1000, 0o500]);
    expect(await text('private/secret')).toBe('s\n');
    expect((await stat(join(destination, 'hostname'))).mtime.toISOString()).toBe('2020-01-02T03:04:05.000Z');

    expect(conflicts.map(describeEtcConflict).sort()).toEqual([
      '/etc/cron.d: local directory where the new image has a file; local version kept',
      '/etc/deleted.conf: deleted locally, changed in the new image; stays deleted',
      '/etc/hosts: changed locally and in the new image; local version kept',
      '/etc/ssh/sshd_config: changed locally and in the new image; local version kept',
    ].sort());
  });

  it('the written tree is the plan, node for node (content, kind, mode, owner, xattrs, targets)', async () => {
    await buildTypicalTrees();
    const { plan } = await mergeEtc({ oldDefault, newDefault, current }, destination);
    const written = await scanEtcTree(destination, 'the merged /etc');
    expect(written).toEqual(new Map(plan.entries.map((e) => [e.path, e.node])));
  });

  it('leaves the three source trees untouched', async () => {
    await buildTypicalTrees();
    const before = await Promise.all([oldDefault, newDefault, current].map((d) => scanEtcTree(d, d)));
    await mergeEtc({ oldDefault, newDefault, current }, destination);
    const after = await Promise.all([oldDefault, newDefault, current].map((d) => scanEtcTree(d, d)));
    expect(after).toEqual(before);
  });

  it('never writes through a symlink: a local symlink to a directory outside stays a symlink', async () => {
    const outside = join(work, 'outside');
    await mkdir(outside);
    await symlink(outside, join(current, 'conf.d'));
    await put(newDefault, 'conf.d/image.conf', 'x\n');
    const { conflicts } = await mergeEtc({ oldDefault, newDefault, current }, destination);
    expect(await readlink(join(destination, 'conf.d'))).toBe(outside);
    expect(await exists(join(outside, 'image.conf'))).toBe(false);
    expect(conflicts.map((c) => `${c.path} ${c.kind}`)).toEqual(['conf.d type']);
  });

  it('refuses an existing destination without touching it', async () => {
    await mkdir(destination);
    await writeFile(join(destination, 'keep'), 'x');
    const err = await rootCause(mergeEtc({ oldDefault, newDefault, current }, destination));
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('already exists');
    expect(await readFile(join(destination, 'keep'), 'utf8')).toBe('x');
  });

  it('a file changed between scan and write fails the merge and leaves no half-written /etc', async () => {
    await buildTypicalTrees();
    const [o, n, c] = await Promise.all([scanEtcTree(oldDefault, 'old'), scanEtcTree(newDefault, 'new'), scanEtcTree(current, 'current')]);
    const plan = planEtcMerge({ oldDefault: o, newDefault: n, current: c });
    await writeFile(join(current, 'hosts'), 'edited meanwhile\n');
    const err = await rootCause(writeMergedEtc(plan, { current, newDefault }, destination));
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(`${join(current, 'hosts')} changed while /etc was being merged`);
    expect(await exists(destination)).toBe(false);
  });

  it('a named pipe in /etc is refused with its path, before anything is written', async () => {
    execFileSync('mkfifo', [join(current, 'initctl')]);
    const err = await rootCause(mergeEtc({ oldDefault, newDefault, current }, destination));
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(`the live /etc has a named pipe at ${join(current, 'initctl')}`);
    expect(await exists(destination)).toBe(false);
  });

  it('a missing tree is named in the error', async () => {
    await rm(oldDefault, { recursive: true });
    const err = await rootCause(mergeEtc({ oldDefault, newDefault, current }, destination));
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(`the booted image defaults ${oldDefault} does not exist`);
  });
});
