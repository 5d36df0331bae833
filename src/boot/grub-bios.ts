/**
 * GRUB for BIOS machines (i386-pc), placed on a GPT disk without grub-install or
 * grub-bios-setup, which both want a mounted /boot and a block device:
 *
 *   1. find GRUB's i386-pc directory: the image's /usr/lib/grub/i386-pc, else the host's
 *      (Debian grub-pc-bin)
 *   2. core.img from grub-mkimage, with every module the menu needs built in and the prefix
 *      `(,gpt<N>)/grub` (the ESP of the disk the BIOS booted from), so nothing is loaded from
 *      the ESP but grub.cfg and grubenv
 *   3. core.img into a slot of the BIOS boot partition, its first-sector blocklist pointing
 *      at the rest of it (written first, so a cut leaves the MBR pointing at the old slot)
 *   4. boot.img into sector 0 with the LBA of core.img, keeping the protective MBR's
 *      partition table (bytes 440-511): `sfdisk --wipe always` erases boot code, so this runs
 *      after the partition table is written
 *
 * Steps 3 and 4 patch the fields grub-bios-setup patches (GRUB 2.06, util/setup.c) and give
 * the same bytes as `grub-bios-setup --no-rs-codes` on the same disk (tested on a loop device).
 */
import { access, open } from 'node:fs/promises';
import { join } from 'node:path';
import { findOnPath, run } from '../core/exec.js';
import { UserError, invariant, withContext } from '../core/errors.js';

export const GRUB_I386_PC_IN_IMAGE = 'usr/lib/grub/i386-pc';
export const GRUB_I386_PC_ON_HOST = '/usr/lib/grub/i386-pc';
/** GRUB's directory on the ESP: grub.cfg and grubenv. */
export const GRUB_ESP_DIR = 'grub';

/**
 * Built into core.img. biosdisk reads the disk through the BIOS; part_gpt and fat find the
 * ESP; linux and boot start the kernel; normal runs grub.cfg, whose commands come from
 * loadenv (grubenv), test (`[`), echo, search, configfile; serial and terminal put the menu
 * on the serial console too.
 */
export const GRUB_CORE_MODULES = [
  'biosdisk', 'part_gpt', 'fat', 'ext2', 'linux', 'boot', 'normal', 'loadenv',
  'search', 'configfile', 'test', 'echo', 'serial', 'terminal',
] as const;

const SECTOR = 512;
/** boot.img (include/grub/i386/pc/boot.h): the BPB a DOS-formatted disk keeps, bytes 3-89. */
const BPB_START = 0x3;
const BPB_END = 0x5a;
/** boot.img: LBA of core.img's first sector, 64-bit little-endian. */
const KERNEL_SECTOR = 0x5c;
/** boot.img: boot drive; 0xff = the drive the BIOS passed in DL. */
const BOOT_DRIVE = 0x64;
/** boot.img: a 2-byte jump that trusts DL only for 0x80-0x8f; NOPs make hard disks work with BIOSes that pass 0. */
const DRIVE_CHECK = 0x66;
/** boot.img: from the NT disk signature (440) to the boot signature (510): the MBR's own bytes. */
const MBR_TABLE_START = 0x1b8;
const MBR_TABLE_END = 0x1fe;
/** The protective MBR's first partition type (GPT). */
const PROTECTIVE_MBR_TYPE_OFFSET = 0x1c2;
const PROTECTIVE_MBR_TYPE = 0xee;

/** diskboot.img's blocklist entries grow down from the end of core.img's first sector: start u64, len u16, segment u16. */
const BLOCKLIST_ENTRY = 12;
/** Where diskboot loads the second sector of core.img: segment 0x800 plus one sector. */
const CORE_LOAD_SEGMENT = 0x820;

/** GRUB's i386-pc files from the image when it ships them, else from this host. */
export async function findGrubI386Pc(deploymentDir: string): Promise<{ dir: string; from: 'image' | 'host' }> {
  for (const [dir, from] of [[join(deploymentDir, GRUB_I386_PC_IN_IMAGE), 'image'], [GRUB_I386_PC_ON_HOST, 'host']] as const) {
    try {
      await access(join(dir, 'boot.img'));
      await access(join(dir, 'kernel.img'));
      await access(join(dir, 'moddep.lst'));
      return { dir, from };
    } catch {
      // next
    }
  }
  throw new UserError(`no GRUB for BIOS: neither the image nor this host has ${GRUB_I386_PC_ON_HOST}`, {
    hint: 'install the Debian package grub-pc-bin on this host (or add it to the image), or choose --bootloader systemd for a UEFI-only disk',
  });
}

/**
 * Whether a BIOS GRUB can be built here for this deployment: grub-mkimage on this host and
 * GRUB's i386-pc files in the image or on the host. A default hybrid disk falls back to
 * UEFI-only without them (a live medium whose image has no GRUB still installs).
 */
export async function grubBiosAvailable(deploymentDir: string): Promise<boolean> {
  if (findOnPath('grub-mkimage') === null) return false;
  try {
    await findGrubI386Pc(deploymentDir);
    return true;
  } catch (err) {
    if (err instanceof UserError) return false;
    throw err;
  }
}

/** The prefix core.img starts from: the ESP partition on the boot drive, whichever drive that is. */
export const grubPrefix = (espPartitionNumber: number): string => `(,gpt${espPartitionNumber})/${GRUB_ESP_DIR}`;

/** Step 2: core.img at `output`. */
export async function buildCoreImage(grubDir: string, output: string, espPartitionNumber: number): Promise<void> {
  await run({
    description: 'Building GRUB core.img for BIOS boot',
    argv: ['grub-mkimage', '-O', 'i386-pc', '-d', grubDir, '-o', output, '-p', grubPrefix(espPartitionNumber), ...GRUB_CORE_MODULES],
  });
}

/** Where core.img may go in the BIOS boot partition: two slots, so an update never overwrites the one in use. */
export interface BiosBootArea {
  startBytes: number;
  sizeBytes: number;
}

export function coreSlotLba(area: BiosBootArea, slot: 0 | 1): { lba: number; sectors: number } {
  invariant(area.startBytes % SECTOR === 0 && area.sizeBytes % SECTOR === 0, 'BIOS boot partition not sector-aligned');
  const half = Math.floor(area.sizeBytes / SECTOR / 2);
  return slot === 0 ? { lba: area.startBytes / SECTOR, sectors: half } : { lba: area.startBytes / SECTOR + half, sectors: area.sizeBytes / SECTOR - half };
}

/** Step 3, as data: core.img padded to whole sectors, its blocklist naming the sectors after the first. */
export function patchCoreImage(core: Uint8Array, firstLba: number): Buffer {
  invariant(core.length > SECTOR, 'core.img is shorter than one sector');
  const sectors = Math.ceil(core.length / SECTOR);
  invariant(sectors <= 0xffff, 'core.img too large for a blocklist');
  const out = Buffer.alloc(sectors * SECTOR);
  out.set(core);
  const first = SECTOR - BLOCKLIST_ENTRY;
  const segment = out.readUInt16LE(first + 10);
  if (segment !== CORE_LOAD_SEGMENT) {
    throw new UserError(`this core.img is not GRUB i386-pc's diskboot layout (load segment 0x${segment.toString(16)})`, {
      hint: 'use grub-mkimage -O i386-pc from the same GRUB as the modules',
    });
  }
  out.writeBigUInt64LE(BigInt(firstLba + 1), first);
  out.writeUInt16LE(sectors - 1, first + 8);
  out.writeUInt16LE(CORE_LOAD_SEGMENT, first + 10);
  out.fill(0, first - BLOCKLIST_ENTRY, first); // the terminator
  return out;
}

/** Step 4, as data: boot.img with core.img's LBA, over the disk's current sector 0. */
export function patchBootSector(bootImg: Uint8Array, currentSector0: Uint8Array, coreLba: number): Buffer {
  invariant(bootImg.length === SECTOR && currentSector0.length === SECTOR, 'boot.img and sector 0 are 512 bytes');
  const out = Buffer.from(bootImg);
  out.set(currentSector0.subarray(BPB_START, BPB_END), BPB_START);
  out.writeBigUInt64LE(BigInt(coreLba), KERNEL_SECTOR);
  out[BOOT_DRIVE] = 0xff;
  out[DRIVE_CHECK] = 0x90;
  out[DRIVE_CHECK + 1] = 0x90;
  out.set(currentSector0.subarray(MBR_TABLE_START, MBR_TABLE_END), MBR_TABLE_START);
  return out;
}

export interface GrubBiosInstall {
  /** A disk image file or a whole-disk block device, its GPT already written. */
  target: string;
  biosBoot: BiosBootArea;
  coreImg: string;
  /** The boot.img of the same GRUB as core.img. */
  bootImg: string;
  /** Default 0 (a new disk); `unused`: the slot the MBR does not point at (an update of GRUB). */
  slot?: 0 | 1 | 'unused';
}

/** The slot an update writes: not the one sector 0's boot.img loads core.img from now. */
export function unusedCoreSlot(sector0: Uint8Array, area: BiosBootArea): 0 | 1 {
  const current = Number(Buffer.from(sector0).readBigUInt64LE(KERNEL_SECTOR));
  return current === coreSlotLba(area, 0).lba ? 1 : 0;
}

/** Steps 3 and 4 on the target: core.img into its slot, synced, then sector 0. */
export async function installGrubBootCode(install: GrubBiosInstall): Promise<{ coreLba: number }> {
  return withContext(`Writing GRUB's BIOS boot code to ${install.target}`, async () => {
    let slot: { lba: number; sectors: number };
    const [core, bootImg] = await Promise.all([readWhole(install.coreImg), readWhole(install.bootImg)]);
    const disk = await open(install.target, 'r+');
    try {
      const sector0 = Buffer.alloc(SECTOR);
      await disk.read(sector0, 0, SECTOR, 0);
      if (sector0[PROTECTIVE_MBR_TYPE_OFFSET] !== PROTECTIVE_MBR_TYPE || sector0.readUInt16LE(0x1fe) !== 0xaa55) {
        throw new UserError(`${install.target} has no protective MBR: GRUB's boot code goes only onto a GPT disk`, { hint: 'write the partition table first' });
      }
      const wanted = install.slot ?? 0;
      slot = coreSlotLba(install.biosBoot, wanted === 'unused' ? unusedCoreSlot(sector0, install.biosBoot) : wanted);
      const patchedCore = patchCoreImage(core, slot.lba);
      if (patchedCore.length > slot.sectors * SECTOR) {
        throw new UserError(`GRUB's core.img (${patchedCore.length} bytes) does not fit a slot of the BIOS boot partition (${slot.sectors * SECTOR} bytes)`, {
          hint: 'build core.img with fewer modules',
        });
      }
      await disk.write(patchedCore, 0, patchedCore.length, slot.lba * SECTOR);
      await disk.sync();
      await disk.write(patchBootSector(bootImg, sector0, slot.lba), 0, SECTOR, 0);
      await disk.sync();
    } finally {
      await disk.close();
    }
    return { coreLba: slot.lba };
  });
}

async function readWhole(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
