/**
 * Privileged tier: `installToFilesystem` onto a root the test prepared (xfs and ext4 on
 * loop devices), its refusals, and --replace wipe.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unwrapContext, UserError } from '../../../src/core/errors.js';
import { espInImage, listBootEntries, readBootEntry } from '../../../src/boot/esp.js';
import { parseReference } from '../../../src/oci/reference.js';
import { installToFilesystem, type ToFilesystemRequest } from '../../../src/install/to-filesystem.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, readFixturesIndex } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsLoopDevices } from '../../support/tier.js';
import { prepareDisk, type PreparedDisk } from './prepared-disk.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip(
  'privileged',
  needsLoopDevices() ??
    needsCommands('sfdisk', 'blkid', 'findmnt', 'mkfs.ext4', 'mkfs.xfs', 'mkfs.fat', 'mcopy', 'fstrim') ??
    needsFile(fixturesIndexPath, fixturesHint),
);

const sh = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });

describe.skipIf(skip)('bootc install to-filesystem', () => {
  let tmp: string;
  const disks: PreparedDisk[] = [];
  const scratch = suiteDir('install-to-filesystem', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
  });
  afterAll(() => {
    for (const d of disks) d.release();
  });

  const prepared = async (name: string, fsType: 'ext4' | 'xfs', options = {}): Promise<PreparedDisk> => {
    const disk = await prepareDisk(tmp, name, fsType, options);
    disks.push(disk);
    return disk;
  };
  const request = (rootPath: string, extra: Partial<ToFilesystemRequest> = {}): ToFilesystemRequest => ({
    rootPath,
    image: parseReference(ociLayoutRef('v1')),
    kargs: [],
    kargDeletes: [],
    skipFinalize: false,
    storeDir: join(tmp, 'store'),
    installerVersion: 'test',
    hostRoot: join(tmp, 'no-host-config'),
    ...extra,
  });
  const refusal = async (req: ToFilesystemRequest): Promise<UserError> => {
    const err = await installToFilesystem(req).then(() => null, (e: unknown) => e);
    const root = unwrapContext(err).root;
    if (!(root instanceof UserError)) throw err ?? new Error('the install was not refused');
    return root;
  };

  it('refuses a directory that is not a mount point', async () => {
    const dir = join(tmp, 'plain-dir');
    mkdirSync(dir);
    expect((await refusal(request(dir))).message).toBe(`${dir} is not a mount point`);
  });

  it('refuses a root that is not empty unless --replace, leaving the files alone', async () => {
    const disk = await prepared('busy', 'ext4');
    writeFileSync(join(disk.mountDir, 'precious'), 'keep me');
    const err = await refusal(request(disk.mountDir, { esp: disk.esp }));
    expect(err.message).toBe(`${disk.mountDir} is not empty: it holds /precious`);
    expect(err.hint).toContain('--replace');
    expect(readFileSync(join(disk.mountDir, 'precious'), 'utf8')).toBe('keep me');
  });

  it('refuses an ESP without a FAT filesystem', async () => {
    const disk = await prepared('no-fat', 'ext4', { formatEsp: false });
    const err = await refusal(request(disk.mountDir, { esp: disk.esp }));
    expect(err.message).toBe(`the ESP ${disk.esp} holds no filesystem, not FAT`);
    expect(err.hint).toContain('mkfs.fat');
  });

  it('discoverable-partitions: refuses a root that is no DPS root partition, naming the key; the root stays empty', async () => {
    const disk = await prepared('not-dps', 'ext4');
    const hostRoot = join(tmp, 'host-dps');
    mkdirSync(join(hostRoot, 'etc/bootc/install'), { recursive: true });
    writeFileSync(join(hostRoot, 'etc/bootc/install/50-test.toml'), '[install]\ndiscoverable-partitions = true\n');
    // The prepared root is a loop device over the partition's byte range: no partition type.
    const err = await refusal(request(disk.mountDir, { esp: disk.esp, hostRoot }));
    expect(err.message).toMatch(/`discoverable-partitions = true`, but \/dev\/loop\d+ is not a GPT partition, not the root type 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709/);
    expect(err.hint).toContain('--root-mount-spec');
    expect(readdirSync(disk.mountDir).filter((n) => n !== 'lost+found')).toEqual([]);
  });

  it('installs onto a prepared xfs root with --replace wipe, and finalises it read-only', async () => {
    const disk = await prepared('xfs', 'xfs');
    writeFileSync(join(disk.mountDir, 'old-file'), 'old');
    const result = await installToFilesystem(request(disk.mountDir, { esp: disk.esp, replace: 'wipe', kargs: ['from.cli=1'] }));
    const digest = readFixturesIndex().tags.v1.manifestDigest;
    expect(result.manifestDigest).toBe(digest);
    expect(result.rootFsType).toBe('xfs');
    const uuid = sh('blkid', '-p', '-o', 'value', '-s', 'UUID', disk.root).trim();
    expect(result.rootFsUuid).toBe(uuid);
    expect(result.boot.kernelArguments).toEqual([`root=UUID=${uuid}`, 'rw', 'console=ttyS0,115200', 'from.cli=1', `bootc.deploy=default/${result.deployment.id}`]);
    expect(readdirSync(disk.mountDir).sort()).toEqual(['.bootc-aleph.json', 'bootc']);
    expect(sh('findmnt', '-n', '-o', 'OPTIONS', '--mountpoint', disk.mountDir)).toMatch(/^ro,/);
    const espUuid = sh('blkid', '-p', '-o', 'value', '-s', 'UUID', disk.esp).trim();
    const fstab = readFileSync(join(result.deployment.dir, 'etc/fstab'), 'utf8');
    expect(fstab).toContain(`UUID=${uuid} / xfs defaults 0 0\n`);
    expect(fstab).toContain(`UUID=${espUuid} /boot vfat umask=0077,shortname=winnt 0 0\n`);
    const esp = espInImage({ image: disk.esp, offsetBytes: 0 });
    const [entry] = await listBootEntries(esp);
    expect(entry).toBe(`bootc-default-${result.deployment.id}+3.conf`);
    expect(await readBootEntry(esp, entry!)).toContain(`options ${result.boot.kernelArguments.join(' ')}`);
  }, 300_000);

  it('takes root= and the /boot line from --root-mount-spec and --boot-mount-spec; --replace alongside keeps old files', async () => {
    const disk = await prepared('specs', 'ext4');
    writeFileSync(join(disk.mountDir, 'old-system'), 'still here');
    const result = await installToFilesystem(
      request(disk.mountDir, { esp: disk.esp, rootMountSpec: 'LABEL=myroot', bootMountSpec: '', skipFinalize: true, replace: 'alongside' }),
    );
    expect(readFileSync(join(disk.mountDir, 'old-system'), 'utf8')).toBe('still here');
    expect(result.boot.kernelArguments.slice(0, 2)).toEqual(['root=LABEL=myroot', 'rw']);
    const fstab = readFileSync(join(result.deployment.dir, 'etc/fstab'), 'utf8');
    expect(fstab).toContain('LABEL=myroot / ext4 defaults 0 0\n');
    expect(fstab).not.toContain('/boot');
    expect(sh('findmnt', '-n', '-o', 'OPTIONS', '--mountpoint', disk.mountDir)).toMatch(/^rw,/);
  }, 300_000);
});
