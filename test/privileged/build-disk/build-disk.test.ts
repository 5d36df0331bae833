/**
 * Privileged tier: a disk image built from the fixture:v1 deployment with no loop device
 * and no mount, checked by the tools that own each format: sfdisk, fsck.vfat, e2fsck,
 * qemu-img, mtools.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { UserError } from '../../../src/core/errors.js';
import { buildDiskImage, diskImageOutputPath, type BuiltDisk } from '../../../src/build-disk/disk-image.js';
import { readPartitionTable } from '../../../src/disk/partition-table.js';
import { ESP_TYPE_GUID, ROOT_X86_64_TYPE_GUID, GiB, MiB } from '../../../src/disk/gpt.js';
import { espInImage, listBootEntries, readBootEntry } from '../../../src/boot/esp.js';
import { parseBlsEntry, entryOptions } from '../../../src/boot/bls.js';
import { fixturesHint, v1RootfsDir } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { DEPLOYMENT_ID, STATEROOT, stageFixtureSysroot } from './staged-sysroot.js';
import { suiteDir } from '../../support/temp-tree.js';

const skip = explainSkip(
  'privileged',
  needsRoot() ??
    needsCommands('sfdisk', 'mkfs.ext4', 'e2fsck', 'mkfs.fat', 'fsck.vfat', 'mcopy', 'qemu-img', 'cpio') ??
    needsFile(join(v1RootfsDir, 'usr/lib/os-release'), fixturesHint),
);

describe.skipIf(skip)('build a disk image from the fixture:v1 deployment', () => {
  let tmp: string;
  let out: string;
  let sysroot: string;
  let built: BuiltDisk;
  let raw: string;

  const scratch = suiteDir('build-disk');
  beforeAll(async () => {
    tmp = scratch.path;
    out = join(tmp, 'output');
    sysroot = (await stageFixtureSysroot(join(tmp, 'sysroot'))).sysrootDir;
    built = await buildDiskImage({
      sysrootDir: sysroot,
      deployment: { stateroot: STATEROOT, deploymentId: DEPLOYMENT_ID, imageVersion: '1', cliKargs: ['quiet'] },
      outputDir: out,
      types: ['raw', 'qcow2'],
    });
    raw = diskImageOutputPath(out, 'raw');
  });

  it("writes bootc-image-builder's output paths and nothing else", () => {
    expect(built.outputs).toEqual({ raw: join(out, 'image/disk.raw'), qcow2: join(out, 'qcow2/disk.qcow2') });
    expect(readdirSync(out).sort()).toEqual(['image', 'qcow2']);
    expect(readdirSync(join(out, 'image'))).toEqual(['disk.raw']);
  });

  it('has a GPT with the ESP and a DPS root partition', async () => {
    const table = await readPartitionTable(raw);
    expect(table.label).toBe('gpt');
    expect(table.partitions.map((p) => [p.typeGuid, p.name, p.startBytes, p.sizeBytes])).toEqual([
      [ESP_TYPE_GUID, 'EFI-SYSTEM', MiB, GiB],
      [ROOT_X86_64_TYPE_GUID, 'root', MiB + GiB, built.layout.root.sizeBytes],
    ]);
  });

  it('has a root filesystem e2fsck accepts, with the planned UUID', async () => {
    const at = `${raw}?offset=${built.layout.root.startBytes}`;
    await run({ description: 'Checking the root filesystem', argv: ['e2fsck', '-fn', at] });
    const { stdout } = await run({ description: 'Reading the superblock', argv: ['dumpe2fs', '-h', at] });
    expect(stdout).toMatch(new RegExp(`Filesystem UUID:\\s+${built.rootFsUuid}`));
    expect(stdout).toMatch(/Filesystem volume name:\s+root/);
    const ls = await run({ description: 'Listing the root', argv: ['debugfs', '-R', 'ls -p /bootc/deploy/default/d1/usr/lib/bootc', at] });
    expect(ls.stdout).toContain('bootc-boot-complete.sh');
  });

  it('has an ESP fsck.vfat accepts', async () => {
    const esp = join(tmp, 'esp.img');
    await run({
      description: 'Extracting the ESP',
      argv: ['dd', `if=${raw}`, `of=${esp}`, `bs=${MiB}`, `skip=1`, `count=${GiB / MiB}`, 'conv=sparse', 'status=none'],
    });
    await run({ description: 'Checking the ESP', argv: ['fsck.vfat', '-n', esp] });
    const { stdout } = await run({ description: 'Reading the ESP label', argv: ['blkid', '-p', '-o', 'export', esp] });
    expect(stdout).toContain('LABEL=EFI-SYSTEM');
    expect(stdout).toContain('TYPE=vfat');
  });

  it('holds systemd-boot, loader.conf, the kernel, the combined initrd and the entry', async () => {
    const esp = espInImage({ image: raw, offsetBytes: MiB });
    expect(await esp.list('EFI/BOOT')).toEqual(['BOOTX64.EFI']);
    expect(await esp.list('EFI/systemd')).toEqual(['systemd-bootx64.efi']);
    expect((await esp.list('bootc/d1')).sort()).toEqual(['initrd.img', 'vmlinuz']);
    expect(await esp.readText('loader/loader.conf')).toBe('default bootc-*\ntimeout 3\neditor no\n');
    expect(await listBootEntries(esp)).toEqual(['bootc-default-d1+3.conf']);
    const entry = parseBlsEntry(await readBootEntry(esp, 'bootc-default-d1+3.conf'));
    expect(entry['title']).toEqual(['Debian GNU/Linux 12 (bookworm) 1']);
    expect(entry['linux']).toEqual(['/bootc/d1/vmlinuz']);
    expect(entry['initrd']).toEqual(['/bootc/d1/initrd.img']);
    // kargs.d of the image (the fixture brings its serial console), then --karg.
    expect(entryOptions(entry)).toEqual([`root=UUID=${built.rootFsUuid}`, 'rw', 'console=ttyS0,115200', 'quiet', 'bootc.deploy=default/d1']);
  });

  it('has a qcow2 qemu-img check accepts, with the same content as the raw image', async () => {
    const qcow2 = diskImageOutputPath(out, 'qcow2');
    await run({ description: 'Checking the qcow2', argv: ['qemu-img', 'check', qcow2] });
    await run({ description: 'Comparing qcow2 and raw', argv: ['qemu-img', 'compare', '-f', 'qcow2', '-F', 'raw', qcow2, raw] });
  });

  it('refuses to overwrite an output unless forced, before doing any work', async () => {
    const err = await buildDiskImage({
      sysrootDir: sysroot,
      deployment: { stateroot: STATEROOT, deploymentId: DEPLOYMENT_ID },
      outputDir: out,
      types: ['qcow2'],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(`the output ${join(out, 'qcow2/disk.qcow2')} already exists`);
    expect(readdirSync(out).sort()).toEqual(['image', 'qcow2']);
  });

  it('refuses a size too small, saying what is needed, before writing anything', async () => {
    const elsewhere = join(tmp, 'small');
    const err = await buildDiskImage({
      sysrootDir: sysroot,
      deployment: { stateroot: STATEROOT, deploymentId: DEPLOYMENT_ID },
      outputDir: elsewhere,
      types: ['raw'],
      sizeBytes: 1536 * MiB,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/^a disk of 1536 MiB is too small for this image: it needs at least \d+ MiB/);
    expect(existsSync(elsewhere)).toBe(false);
  });

  it('refuses an ESP too small for the boot files', async () => {
    const err = await buildDiskImage({
      sysrootDir: sysroot,
      deployment: { stateroot: STATEROOT, deploymentId: DEPLOYMENT_ID },
      outputDir: join(tmp, 'small-esp'),
      types: ['raw'],
      espBytes: 40 * MiB,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/^the ESP of 40 MiB is too small: this image's boot files need \d+ MiB/);
    expect(readdirSync(join(tmp, 'small-esp'))).toEqual([]);
  });
});
