/**
 * Privileged tier: `installToDisk` on real loop devices. Every refusal leaves the disk
 * byte-for-byte unchanged and nothing attached or mounted; a successful install is checked
 * with the tools that own each format (sfdisk, blkid, mtools, mount); a failure half-way
 * says what state the disk is in and still cleans up.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { unwrapContext, UserError } from '../../../src/core/errors.js';
import { Progress, type ProgressEvent, type StepsEvent } from '../../../src/core/progress.js';
import { espInImage, readBootEntry, listBootEntries } from '../../../src/boot/esp.js';
import { parseReference } from '../../../src/oci/reference.js';
import { readPartitionTable } from '../../../src/disk/partition-table.js';
import { BIOS_BOOT_TYPE_GUID, ESP_TYPE_GUID, ROOT_X86_64_TYPE_GUID } from '../../../src/disk/gpt.js';
import { loadHostStatus } from '../../../src/updates/status.js';
import { INSTALL_MOUNTS_DIR, installToDisk, type ToDiskRequest } from '../../../src/install/to-disk.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, readFixturesIndex } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsLoopDevices } from '../../support/tier.js';
import { deriveFixtureV1 } from '../../support/derived-fixture.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip(
  'privileged',
  needsLoopDevices() ??
    needsCommands('sfdisk', 'wipefs', 'blkid', 'lsblk', 'mkfs.ext4', 'mkfs.xfs', 'mkfs.fat', 'mcopy', 'fstrim') ??
    needsFile(fixturesIndexPath, fixturesHint),
);

const sh = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const loopsOf = (file: string): string => sh('losetup', '-j', file);

describe.skipIf(skip)('bootc install to-disk on loop devices', () => {
  let tmp: string;
  let store: string;
  const attached: string[] = [];
  const mounted: string[] = [];

  const scratch = suiteDir('install-privileged', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
    store = join(tmp, 'store');
  });
  afterEach(() => {
    for (const m of mounted.splice(0)) sh('umount', m);
    for (const l of attached.splice(0)) sh('losetup', '--detach', l);
  });

  const diskFile = (name: string, size: string): string => {
    const file = join(tmp, name);
    sh('truncate', '-s', size, file);
    return file;
  };
  const attach = (file: string): string => {
    const loop = sh('losetup', '--find', '--show', '--partscan', file).trim();
    attached.push(loop);
    return loop;
  };
  const request = (device: string, extra: Partial<ToDiskRequest> = {}): ToDiskRequest => ({
    device,
    image: parseReference(ociLayoutRef('v1')),
    viaLoopback: false,
    wipe: false,
    kargs: [],
    kargDeletes: [],
    genericImage: false,
    storeDir: store,
    installerVersion: 'test',
    hostRoot: join(tmp, 'no-host-config'),
    ...extra,
  });
  const refusal = async (req: ToDiskRequest): Promise<UserError> => {
    const err = await installToDisk(req).then(
      () => null,
      (e: unknown) => e,
    );
    const root = unwrapContext(err).root;
    if (!(root instanceof UserError)) throw err ?? new Error('the install was not refused');
    return root;
  };
  const nothingLeftMounted = (): void => {
    const mine = readdirSync(INSTALL_MOUNTS_DIR, { withFileTypes: true }).map((d) => d.name);
    expect(sh('findmnt', '-rn', '-o', 'TARGET').split('\n').filter((t) => t.startsWith(INSTALL_MOUNTS_DIR))).toEqual([]);
    expect(mine.filter((n) => n.startsWith('rootfs-'))).toEqual([]);
  };

  it('refuses a disk with a mounted filesystem, and leaves it unchanged', async () => {
    const file = diskFile('mounted.raw', '64M');
    const loop = attach(file);
    sh('mkfs.ext4', '-q', loop);
    const dir = join(tmp, 'mnt');
    mkdirSync(dir, { recursive: true });
    // Read-only, so the only writer that could change the bytes is the installer.
    sh('mount', '-o', 'ro', loop, dir);
    mounted.push(dir);
    const before = sha256(file);
    const err = await refusal(request(loop, { wipe: true }));
    expect(err.message).toBe(`${loop} is mounted at ${dir}`);
    expect(sha256(file)).toBe(before);
  });

  it('refuses a disk with partitions unless --wipe, and leaves it unchanged', async () => {
    const file = diskFile('partitioned.raw', '64M');
    sh('sh', '-c', `printf 'label: gpt\\nsize=8M, name="data"\\n' | sfdisk -q ${file}`);
    const loop = attach(file);
    const before = sha256(file);
    const err = await refusal(request(loop));
    expect(err.message).toMatch(new RegExp(`^Detected existing partitions on ${loop}: `));
    expect(err.hint).toContain('--wipe');
    expect(sha256(file)).toBe(before);
  });

  it('refuses a filesystem signature on the whole disk unless --wipe', async () => {
    const file = diskFile('signature.raw', '64M');
    sh('mkfs.ext4', '-q', '-F', file);
    const loop = attach(file);
    const before = sha256(file);
    expect((await refusal(request(loop))).message).toBe(`${loop} holds a ext4 signature`);
    expect(sha256(file)).toBe(before);
  });

  it('refuses a disk too small for the layout, before wiping anything', async () => {
    const file = diskFile('small.raw', '64M');
    sh('sh', '-c', `printf 'label: gpt\\nsize=8M, name="data"\\n' | sfdisk -q ${file}`);
    const loop = attach(file);
    const before = sha256(file);
    expect((await refusal(request(loop, { wipe: true }))).message).toMatch(/ is too small: it needs at least /);
    expect(sha256(file)).toBe(before);
  });

  it('--via-loopback: refuses a partitioned file and detaches its loop device', async () => {
    const file = diskFile('via-loopback-partitioned.raw', '64M');
    sh('sh', '-c', `printf 'label: gpt\\nsize=8M, name="data"\\n' | sfdisk -q ${file}`);
    const before = sha256(file);
    expect((await refusal(request(file, { viaLoopback: true }))).message).toMatch(/^Detected existing partitions on \/dev\/loop\d+/);
    expect(sha256(file)).toBe(before);
    expect(loopsOf(file)).toBe('');
  });

  it('--via-loopback: refuses a file already attached to a loop device', async () => {
    const file = diskFile('attached.raw', '64M');
    const loop = attach(file);
    const err = await refusal(request(file, { viaLoopback: true }));
    expect(err.message).toBe(`${file} is already attached to ${loop}`);
    expect(loopsOf(file).trim().split('\n')).toHaveLength(1);
  });

  it('refuses a regular file without --via-loopback, and a block device with it', async () => {
    const file = diskFile('plain.raw', '64M');
    const err = await refusal(request(file));
    expect(err.message).toBe(`${file} is not a block device`);
    expect(err.hint).toContain('--via-loopback');
    const loop = attach(file);
    expect((await refusal(request(loop, { viaLoopback: true }))).message).toBe(`${loop} is not a regular file`);
  });

  it('installs fixture:v1 with --wipe over an old table, root filesystem and stateroot from the install config', async () => {
    const file = diskFile('installed.raw', '4G');
    sh('sh', '-c', `printf 'label: gpt\\nsize=8M, name="old"\\n' | sfdisk -q ${file}`);
    const loop = attach(file);
    const hostRoot = join(tmp, 'host');
    mkdirSync(join(hostRoot, 'etc/bootc/install'), { recursive: true });
    writeFileSync(
      join(hostRoot, 'etc/bootc/install/50-test.toml'),
      '[install.filesystem.root]\ntype = "xfs"\n[install]\nstateroot = "tested"\nkargs = ["from.config=1", "quiet"]\nkarg-deletes = ["quiet"]\n',
    );
    const keys = join(tmp, 'keys');
    writeFileSync(keys, 'ssh-ed25519 AAAAtest root@test\n');
    const events: ProgressEvent[] = [];
    const progress = new Progress([{ handle: (e) => events.push(e), close: async () => undefined }]);
    // The answers file's user, added to the deployment before its boot entry.
    const users = [{ name: 'answered', passwordHash: '$6$salt$hash', groups: ['sudo'] }];
    const result = await installToDisk(request(loop, { wipe: true, hostRoot, kargs: ['from.cli=1'], rootSshAuthorizedKeysFile: keys, users, progress }));
    const steps = events.filter((e): e is StepsEvent => e.type === 'ProgressSteps' && e.task === 'install');
    expect(steps.map((e) => e.steps)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(steps.at(-1)!.subtasks.every((t) => t.completed)).toBe(true);
    const digest = readFixturesIndex().tags.v1.manifestDigest;
    expect(result.manifestDigest).toBe(digest);
    expect(result.rootFsType).toBe('xfs');
    expect(result.deployment.stateroot).toBe('tested');
    expect(result.boot.kernelArguments).toEqual([
      `root=UUID=${result.rootFsUuid}`, 'rw', 'from.config=1', 'console=ttyS0,115200', 'from.cli=1', `bootc.deploy=tested/${result.deployment.id}`,
    ]);
    nothingLeftMounted();

    const table = await readPartitionTable(file);
    expect(table.label).toBe('gpt');
    // Hybrid by default on x86_64: the BIOS boot partition lies before the ESP, numbered 3.
    expect(table.partitions.map((p) => [p.name, p.typeGuid])).toEqual([
      ['EFI-SYSTEM', ESP_TYPE_GUID],
      ['root', ROOT_X86_64_TYPE_GUID],
      ['BIOS-BOOT', BIOS_BOOT_TYPE_GUID],
    ]);
    expect(table.partitions[2]!.startBytes).toBe(34 * 512);
    // GRUB's boot.img in the MBR points at core.img at the start of the BIOS boot partition.
    const mbr = Buffer.alloc(512);
    const fd = openSync(file, 'r');
    readSync(fd, mbr, 0, 512, 0);
    closeSync(fd);
    expect([mbr.readUInt16LE(510), Number(mbr.readBigUInt64LE(0x5c)), mbr[0x1c2]]).toEqual([0xaa55, 34, 0xee]);
    const [esp, root] = table.partitions;
    const rootLoop = sh('losetup', '--find', '--show', '--read-only', '--offset', String(root!.startBytes), '--sizelimit', String(root!.sizeBytes), file).trim();
    attached.push(rootLoop);
    expect(sh('blkid', '-p', '-o', 'value', '-s', 'TYPE', rootLoop).trim()).toBe('xfs');
    expect(sh('blkid', '-p', '-o', 'value', '-s', 'LABEL', rootLoop).trim()).toBe('root');
    expect(sh('blkid', '-p', '-o', 'value', '-s', 'UUID', rootLoop).trim()).toBe(result.rootFsUuid);
    const dir = join(tmp, 'installed-root');
    mkdirSync(dir, { recursive: true });
    sh('mount', '-o', 'ro,norecovery', rootLoop, dir);
    mounted.push(dir);
    const deployment = join(dir, 'bootc/deploy/tested', result.deployment.id);
    expect(readFileSync(join(deployment, 'usr/lib/fixture-release'), 'utf8').trim()).toBe('1');
    expect(readFileSync(join(deployment, 'etc/passwd'), 'utf8')).toMatch(/^answered:x:(\d+):\d+::\/home\/answered:\/bin\/bash$/m);
    expect(readFileSync(join(deployment, 'etc/shadow'), 'utf8')).toMatch(/^answered:\$6\$salt\$hash:/m);
    expect(readFileSync(join(deployment, 'etc/group'), 'utf8')).toMatch(/^sudo:x:27:(.*,)?answered$/m);
    expect(statSync(join(dir, 'bootc/state/tested/var/home/answered')).isDirectory()).toBe(true);
    const fstab = readFileSync(join(deployment, 'etc/fstab'), 'utf8');
    expect(fstab).toContain(`UUID=${result.rootFsUuid} / xfs defaults 0 0\n`);
    expect(fstab).toMatch(/^UUID=[0-9A-F]{4}-[0-9A-F]{4} \/boot vfat umask=0077,shortname=winnt 0 0$/m);
    expect(readFileSync(join(deployment, 'etc/tmpfiles.d/bootc-root-ssh.conf'), 'utf8')).toBe(
      'd /var/roothome/.ssh 0700 root root -\n' +
        `f~ /var/roothome/.ssh/authorized_keys 600 root root - ${Buffer.from('ssh-ed25519 AAAAtest root@test\n').toString('base64')}\n`,
    );
    const aleph = JSON.parse(readFileSync(join(dir, '.bootc-aleph.json'), 'utf8')) as Record<string, unknown>;
    expect(aleph).toMatchObject({ digest, image: ociLayoutRef('v1'), 'target-image': ociLayoutRef('v1'), 'installer-version': 'test', selinux: 'disabled' });
    expect(Object.keys(aleph)).toEqual(expect.arrayContaining(['labels', 'timestamp', 'kernel']));

    // What `bootc status` will say once this disk boots with the entry's command line.
    const cmdline = join(tmp, 'cmdline');
    writeFileSync(cmdline, result.boot.kernelArguments.join(' ') + '\n');
    const host = await loadHostStatus({ cmdlinePath: cmdline, sysroot: dir });
    expect(host.spec.image).toEqual({ image: ociLayoutRef('v1').slice('oci:'.length), transport: 'oci' });
    expect(host.status.booted?.image?.imageDigest).toBe(digest);

    const espLoc = espInImage({ image: file, offsetBytes: esp!.startBytes });
    const entries = await listBootEntries(espLoc);
    expect(entries).toEqual([`bootc-tested-${result.deployment.id}+3.conf`]);
    expect(await readBootEntry(espLoc, entries[0]!)).toContain(`options ${result.boot.kernelArguments.join(' ')}`);
  }, 300_000);

  it('--filesystem btrfs wins over the install config, and --root-size leaves the rest of the disk free', async () => {
    const file = diskFile('btrfs.raw', '6G');
    const hostRoot = join(tmp, 'host-xfs');
    mkdirSync(join(hostRoot, 'run/bootc/install'), { recursive: true });
    writeFileSync(join(hostRoot, 'run/bootc/install/50-test.toml'), '[install]\nroot-fs-type = "xfs"\n');
    const result = await installToDisk(request(file, { viaLoopback: true, hostRoot, filesystem: 'btrfs', rootSizeBytes: 3 * 1024 ** 3 }));
    expect(result.rootFsType).toBe('btrfs');
    const [, root] = (await readPartitionTable(file)).partitions;
    expect(root!.sizeBytes).toBe(3 * 1024 ** 3);
    const rootLoop = sh('losetup', '--find', '--show', '--read-only', '--offset', String(root!.startBytes), '--sizelimit', String(root!.sizeBytes), file).trim();
    attached.push(rootLoop);
    expect(sh('blkid', '-p', '-o', 'value', '-s', 'TYPE', rootLoop).trim()).toBe('btrfs');
    expect(sh('blkid', '-p', '-o', 'value', '-s', 'UUID', rootLoop).trim()).toBe(result.rootFsUuid);
    expect(loopsOf(file)).toContain(rootLoop);
  }, 300_000);

  it('the image\'s own install config: xfs, discoverable partitions (no root=), boot-mount-spec ""', async () => {
    const image = await deriveFixtureV1(join(tmp, 'config-layout'), 'with-config', {
      'usr/lib/bootc/install/00-os.toml': '[install.filesystem.root]\ntype = "xfs"\n[install]\ndiscoverable-partitions = true\nboot-mount-spec = ""\n',
    }, 'an install config asking for xfs and discoverable partitions');
    const file = diskFile('image-config.raw', '4G');
    const result = await installToDisk(request(file, { viaLoopback: true, image: parseReference(image) }));
    expect(result.rootFsType).toBe('xfs');
    expect(result.boot.kernelArguments).toEqual(['rw', 'console=ttyS0,115200', `bootc.deploy=default/${result.deployment.id}`]);
    const [esp, root] = (await readPartitionTable(file)).partitions;
    // What systemd-gpt-auto-generator looks for, with no root= on the command line.
    expect(root!.typeGuid).toBe(ROOT_X86_64_TYPE_GUID);
    const rootLoop = sh('losetup', '--find', '--show', '--read-only', '--offset', String(root!.startBytes), '--sizelimit', String(root!.sizeBytes), file).trim();
    attached.push(rootLoop);
    expect(sh('blkid', '-p', '-o', 'value', '-s', 'TYPE', rootLoop).trim()).toBe('xfs');
    const dir = join(tmp, 'image-config-root');
    mkdirSync(dir, { recursive: true });
    sh('mount', '-o', 'ro,norecovery', rootLoop, dir);
    mounted.push(dir);
    const fstab = readFileSync(join(dir, 'bootc/deploy/default', result.deployment.id, 'etc/fstab'), 'utf8');
    expect(fstab).toContain(`UUID=${result.rootFsUuid} / xfs defaults 0 0\n`);
    expect(fstab).not.toMatch(/ \/boot /);
    const espLoc = espInImage({ image: file, offsetBytes: esp!.startBytes });
    const [entry] = await listBootEntries(espLoc);
    expect(await readBootEntry(espLoc, entry!)).toContain(`options rw console=ttyS0,115200 bootc.deploy=default/${result.deployment.id}\n`);
  }, 300_000);

  it('--enforce-container-sigpolicy, and the install config key, refuse an image the policy accepts unsigned, before writing anything', async () => {
    const file = diskFile('sigpolicy.raw', '4G');
    const policy = join(tmp, 'accept-anything.json');
    writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    // The flag: refused before the pull.
    const byFlag = await refusal(request(file, { viaLoopback: true, signaturePolicy: policy, policy: { enforceContainerSigpolicy: true } }));
    expect(byFlag.message).toMatch(/--enforce-container-sigpolicy: the signature policy .*accept-anything\.json \(default\) would accept oci:.*:v1 without any signature/);
    expect(byFlag.hint).toMatch(/signedBy or sigstoreSigned/);
    // The key (here the host's install config): refused once the config is known, still before the disk.
    const hostRoot = join(tmp, 'host-sigpolicy');
    mkdirSync(join(hostRoot, 'etc/bootc/install'), { recursive: true });
    writeFileSync(join(hostRoot, 'etc/bootc/install/50-test.toml'), '[install]\nenforce-container-sigpolicy = true\n');
    const byKey = await refusal(request(file, { viaLoopback: true, hostRoot, signaturePolicy: policy }));
    expect(byKey.message).toMatch(/would accept oci:.*:v1 without any signature/);
    expect(sh('du', '--block-size=1', file).split('\t')[0]).toBe('0');
    expect(loopsOf(file)).toBe('');
  }, 300_000);

  it('refuses an image without a kernel before writing anything', async () => {
    const file = diskFile('nokernel.raw', '4G');
    const err = await refusal(request(file, { viaLoopback: true, image: parseReference(ociLayoutRef('nokernel')) }));
    expect(err.message).toMatch(/^image .*:nokernel has no kernel/);
    // Still a hole from end to end: not one block was written.
    expect(sh('du', '--block-size=1', file).split('\t')[0]).toBe('0');
    expect(loopsOf(file)).toBe('');
  }, 300_000);

  it('a failure after partitioning says what state the disk is in, and leaves nothing mounted or attached', async () => {
    const file = diskFile('full.raw', '4G');
    // A 256 MiB root cannot hold the image: the import fails half-way.
    const err = await installToDisk(request(file, { viaLoopback: true, rootSizeBytes: 256 * 1024 * 1024 })).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`${file}: the system was written but not finalised; it may not boot; run the install again with --wipe`);
    const root = unwrapContext(err).root;
    expect(root).toBeInstanceOf(UserError);
    expect((root as UserError).message).toBe('the new root filesystem is full');
    nothingLeftMounted();
    expect(loopsOf(file)).toBe('');
  }, 300_000);
});
