/**
 * The partition table of a disk image, as data: a planner computes it, a renderer prints
 * the sfdisk script, partition-table.ts applies it.
 *
 *   1 MiB  GPT header and entries (and alignment); on hybrid disks the BIOS boot partition
 *          (GRUB's core.img) fills LBA 34-2047 of this gap, numbered after ESP and root
 *   ESP    FAT32, GPT name EFI-SYSTEM                 default 1 GiB
 *   root   the physical root, GPT name root, DPS type so systemd can find it
 *   1 MiB  backup GPT (and alignment)
 */
import { UserError, invariant } from '../core/errors.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const SECTOR_BYTES = 512;

/** Every partition starts and ends on a 1 MiB boundary, as fdisk and parted align. */
export const PARTITION_ALIGNMENT_BYTES = MiB;
/** Room for the primary GPT before the first partition (34 sectors, aligned up). */
export const GPT_HEAD_BYTES = MiB;
/** Room for the backup GPT at the end of the disk (33 sectors, aligned up). */
export const GPT_TAIL_BYTES = MiB;

/** UEFI spec: EFI System Partition. */
export const ESP_TYPE_GUID = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
/** GRUB's "BIOS boot partition": where grub-bios-setup (and we) embed core.img on GPT disks. */
export const BIOS_BOOT_TYPE_GUID = '21686148-6449-6E6F-744E-656564454649';
/** First LBA after the primary GPT header (1) and 128 entries of 128 bytes (32 sectors). */
export const GPT_FIRST_USABLE_LBA = 34;
export const BIOS_BOOT_PARTITION_NAME = 'BIOS-BOOT';

/** Discoverable Partitions Specification: root partition (x86-64), found by systemd-gpt-auto-generator. */
export const ROOT_X86_64_TYPE_GUID = '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709';
/** DPS root partition (aarch64), for images of that architecture. */
export const ROOT_AARCH64_TYPE_GUID = 'B921B045-1DF0-41C3-AF44-4C6F280D3FAE';

/** bootc's ESP size for the composefs/UKI layout: room for several kernels and initrds. */
export const DEFAULT_ESP_BYTES = GiB;

export const ESP_PARTITION_NAME = 'EFI-SYSTEM';
export const ROOT_PARTITION_NAME = 'root';

export type DiskArch = 'x86_64' | 'aarch64';

/** The DPS root partition type of each architecture: what systemd-gpt-auto-generator looks for. */
export const ROOT_TYPE_GUIDS: Readonly<Record<DiskArch, string>> = {
  x86_64: ROOT_X86_64_TYPE_GUID,
  aarch64: ROOT_AARCH64_TYPE_GUID,
};

/** An OCI architecture (`amd64`, `arm64`) as a disk architecture. */
export function diskArchOf(ociArchitecture: string): DiskArch {
  if (ociArchitecture === 'amd64') return 'x86_64';
  if (ociArchitecture === 'arm64') return 'aarch64';
  throw new UserError(`no disk layout for the architecture ${ociArchitecture}`, { hint: 'bootc builds and installs amd64 and arm64 images' });
}

export interface PlannedPartition {
  /** 1-based, as the kernel numbers them. */
  number: number;
  name: string;
  typeGuid: string;
  startBytes: number;
  sizeBytes: number;
}

export interface DiskLayout {
  totalBytes: number;
  esp: PlannedPartition;
  root: PlannedPartition;
  /** GRUB's core.img for BIOS boot (hybrid disks); in the gap before the ESP, so ESP and root keep their places. */
  biosBoot?: PlannedPartition;
}

export interface DiskLayoutRequest {
  espBytes?: number;
  /** Smallest root partition that holds the root filesystem. */
  rootMinBytes: number;
  /** Whole disk; absent: just what the partitions need. The root partition takes the rest. */
  totalBytes?: number;
  /** Exact root partition size (`install to-disk --root-size`); default: the rest of the disk. */
  rootBytes?: number;
  arch?: DiskArch;
  /** Add the BIOS boot partition (x86_64 only: GRUB i386-pc). */
  biosBoot?: boolean;
}

export const alignUp = (bytes: number, to: number = PARTITION_ALIGNMENT_BYTES): number => Math.ceil(bytes / to) * to;
const alignDown = (bytes: number, to: number = PARTITION_ALIGNMENT_BYTES): number => Math.floor(bytes / to) * to;

/** Whole GiB as such, anything else in MiB rounded up, so a "needs" figure is never short. */
export const formatSize = (bytes: number): string =>
  bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : `${Math.ceil(bytes / MiB)} MiB`;

export function planDiskLayout(request: DiskLayoutRequest): DiskLayout {
  const espBytes = alignUp(request.espBytes ?? DEFAULT_ESP_BYTES);
  const rootMin = alignUp(Math.max(request.rootMinBytes, request.rootBytes ?? 0));
  const neededTotal = GPT_HEAD_BYTES + espBytes + rootMin + GPT_TAIL_BYTES;
  let totalBytes = neededTotal;
  if (request.totalBytes !== undefined) {
    if (request.totalBytes < neededTotal) {
      throw new UserError(
        `a disk of ${formatSize(request.totalBytes)} is too small for this image: it needs at least ${formatSize(neededTotal)} ` +
          `(ESP ${formatSize(espBytes)}, root filesystem ${formatSize(rootMin)})`,
        { hint: `ask for --size ${Math.ceil(neededTotal / MiB)}M or more, or leave the size out` },
      );
    }
    totalBytes = alignDown(request.totalBytes);
  }
  const esp: PlannedPartition = {
    number: 1,
    name: ESP_PARTITION_NAME,
    typeGuid: ESP_TYPE_GUID,
    startBytes: GPT_HEAD_BYTES,
    sizeBytes: espBytes,
  };
  const rootStart = esp.startBytes + esp.sizeBytes;
  const root: PlannedPartition = {
    number: 2,
    name: ROOT_PARTITION_NAME,
    typeGuid: ROOT_TYPE_GUIDS[request.arch ?? 'x86_64'],
    startBytes: rootStart,
    sizeBytes: request.rootBytes !== undefined ? rootMin : totalBytes - GPT_TAIL_BYTES - rootStart,
  };
  invariant(root.sizeBytes >= rootMin, 'root partition smaller than planned');
  if (!request.biosBoot) return { totalBytes, esp, root };
  if ((request.arch ?? 'x86_64') !== 'x86_64') {
    throw new UserError(`a BIOS boot partition is for x86_64 disks, not ${request.arch}`, { hint: 'choose the bootloader systemd for this architecture' });
  }
  return { totalBytes, esp, root, biosBoot: planBiosBootPartition(esp) };
}

/** LBA 34 up to the ESP: 2014 sectors (~1 MiB) before a 1 MiB-aligned ESP, room for core.img and a second slot. */
function planBiosBootPartition(esp: PlannedPartition): PlannedPartition {
  const startBytes = GPT_FIRST_USABLE_LBA * SECTOR_BYTES;
  invariant(esp.startBytes > startBytes, 'no gap before the ESP for the BIOS boot partition');
  return { number: 3, name: BIOS_BOOT_PARTITION_NAME, typeGuid: BIOS_BOOT_TYPE_GUID, startBytes, sizeBytes: esp.startBytes - startBytes };
}

/** The script `sfdisk` reads on stdin to write this table. */
export function renderSfdiskScript(layout: DiskLayout, diskGuid?: string): string {
  const lines = ['label: gpt'];
  if (diskGuid) lines.push(`label-id: ${diskGuid.toUpperCase()}`);
  const firstLba = layout.biosBoot ? GPT_FIRST_USABLE_LBA : GPT_HEAD_BYTES / SECTOR_BYTES;
  lines.push('unit: sectors', `sector-size: ${SECTOR_BYTES}`, `first-lba: ${firstLba}`, '');
  // Listed in number order: the BIOS boot partition is number 3 though it lies first.
  for (const p of [layout.esp, layout.root, ...(layout.biosBoot ? [layout.biosBoot] : [])]) {
    invariant(p.startBytes % SECTOR_BYTES === 0 && p.sizeBytes % SECTOR_BYTES === 0, 'partition not sector-aligned');
    lines.push(
      `start=${p.startBytes / SECTOR_BYTES}, size=${p.sizeBytes / SECTOR_BYTES}, type=${p.typeGuid}, name="${p.name}"`,
    );
  }
  return lines.join('\n') + '\n';
}
