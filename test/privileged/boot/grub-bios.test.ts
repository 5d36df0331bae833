/**
 * GRUB's BIOS boot code placed by us on a disk image file is byte-identical to what
 * `grub-bios-setup --no-rs-codes` writes to the same disk through a loop device (it needs a
 * mounted directory holding boot.img and core.img on that disk, so it gets one on the root
 * partition). Compared: the MBR and the whole gap before the ESP (BIOS boot partition).
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { GRUB_I386_PC_ON_HOST, buildCoreImage, installGrubBootCode } from '../../../src/boot/grub-bios.js';
import { MiB, planDiskLayout } from '../../../src/disk/gpt.js';
import { writePartitionTable } from '../../../src/disk/partition-table.js';
import { explainSkip, needsCommands, needsFile, needsLoopDevices } from '../../support/tier.js';
import { suiteDir } from '../../support/temp-tree.js';

const GRUB_BIOS_SETUP = join(GRUB_I386_PC_ON_HOST, 'grub-bios-setup');
const skip = explainSkip(
  'privileged',
  needsLoopDevices() ??
    needsCommands('grub-mkimage', 'sfdisk', 'mkfs.ext4') ??
    needsFile(GRUB_BIOS_SETUP, 'install the Debian package grub-pc-bin'),
);

const layout = planDiskLayout({ rootMinBytes: 100 * MiB, espBytes: 64 * MiB, totalBytes: 200 * MiB, biosBoot: true });
const GAP_BYTES = layout.esp.startBytes;

async function sparseFile(path: string, bytes: number): Promise<void> {
  const f = await open(path, 'w');
  await f.truncate(bytes);
  await f.close();
}

const attach = async (args: string[]): Promise<string> =>
  (await run({ description: 'Attaching a loop device', argv: ['losetup', ...args] })).stdout.trim();

const head = (path: string): Buffer => readFileSync(path).subarray(0, GAP_BYTES);

describe.skipIf(skip)('GRUB BIOS boot code', () => {
  let work: string;
  let coreImg: string;
  const bootImg = join(GRUB_I386_PC_ON_HOST, 'boot.img');

  const scratch = suiteDir('grub-bios');
  beforeAll(async () => {
    work = scratch.path;
    coreImg = join(work, 'core.img');
    await buildCoreImage(GRUB_I386_PC_ON_HOST, coreImg, layout.esp.number);
  });

  it('writes the bytes grub-bios-setup --no-rs-codes writes', async () => {
    const theirs = join(work, 'theirs.raw');
    const ours = join(work, 'ours.raw');
    await sparseFile(theirs, layout.totalBytes);
    await writePartitionTable(theirs, layout);
    copyFileSync(theirs, ours);

    const { coreLba } = await installGrubBootCode({ target: ours, biosBoot: layout.biosBoot!, coreImg, bootImg });
    expect(coreLba).toBe(34);

    // This kernel may show no partition nodes for a loop device, so the root partition gets a
    // loop device of its own; grub-bios-setup only needs the directory to be on some disk.
    const loop = await attach(['--find', '--show', theirs]);
    const rootLoop = await attach(['--find', '--show', '--offset', String(layout.root.startBytes), '--sizelimit', String(layout.root.sizeBytes), theirs]);
    const mnt = join(work, 'mnt');
    mkdirSync(mnt);
    try {
      await run({ description: 'mkfs', argv: ['mkfs.ext4', '-q', rootLoop] });
      await run({ description: 'mount', argv: ['mount', rootLoop, mnt] });
      try {
        copyFileSync(bootImg, join(mnt, 'boot.img'));
        copyFileSync(coreImg, join(mnt, 'core.img'));
        await run({ description: 'grub-bios-setup', argv: [GRUB_BIOS_SETUP, '--no-rs-codes', '-d', mnt, loop] });
      } finally {
        await run({ description: 'umount', argv: ['umount', mnt] });
      }
    } finally {
      for (const dev of [rootLoop, loop]) await run({ description: 'detach', argv: ['losetup', '--detach', dev] });
    }

    const a = head(theirs);
    const b = head(ours);
    const differing = [...a.keys()].filter((i) => a[i] !== b[i]);
    expect(differing.slice(0, 20)).toEqual([]);
    // Not vacuous: boot.img's signature and core.img's start are there.
    expect(b.readUInt16LE(510)).toBe(0xaa55);
    expect(b.subarray(34 * 512, 34 * 512 + 0x1e8)).toEqual(readFileSync(coreImg).subarray(0, 0x1e8));
  });

  it('puts a second core.img in slot 1 and points the MBR at it', async () => {
    const disk = join(work, 'slots.raw');
    await sparseFile(disk, layout.totalBytes);
    await writePartitionTable(disk, layout);
    await installGrubBootCode({ target: disk, biosBoot: layout.biosBoot!, coreImg, bootImg });
    const { coreLba } = await installGrubBootCode({ target: disk, biosBoot: layout.biosBoot!, coreImg, bootImg, slot: 1 });
    expect(coreLba).toBe(34 + 1007);
    const bytes = readFileSync(disk);
    expect(Number(bytes.readBigUInt64LE(0x5c))).toBe(coreLba);
    // diskboot's blocklist in the new slot names the sectors after its own first one.
    expect(Number(bytes.readBigUInt64LE(coreLba * 512 + 500))).toBe(coreLba + 1);
    // An update goes to the slot the MBR does not use, and back.
    expect((await installGrubBootCode({ target: disk, biosBoot: layout.biosBoot!, coreImg, bootImg, slot: 'unused' })).coreLba).toBe(34);
    expect((await installGrubBootCode({ target: disk, biosBoot: layout.biosBoot!, coreImg, bootImg, slot: 'unused' })).coreLba).toBe(34 + 1007);
  });

  it('refuses a disk without a protective MBR', async () => {
    const disk = join(work, 'blank.raw');
    await sparseFile(disk, layout.totalBytes);
    await expect(installGrubBootCode({ target: disk, biosBoot: layout.biosBoot!, coreImg, bootImg })).rejects.toThrow(/has no protective MBR/);
  });
});
