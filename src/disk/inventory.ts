/**
 * The disks an install could go to: every whole disk `lsblk -J -b -O` lists, each with the
 * reason it is refused (the running system, anything mounted, LVM/RAID/LUKS members, the
 * install medium), and matching a disk selector (path, serial, wwn, model, or the largest
 * or smallest disk) against them. Used by the interactive installer's disk screen and by
 * answers files. Pure parsing and matching, plus `readDiskInventory`, the thin loader.
 */
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { run } from '../core/exec.js';
import { UserError, withContext } from '../core/errors.js';
import { formatSize } from './gpt.js';
import { checkInstallTarget, lsblkDeviceSchema, rootDeviceNumbers, walkDevices } from './block-device.js';

export type DiskSelector =
  | { by: 'path'; path: string }
  | { by: 'serial'; serial: string }
  | { by: 'wwn'; wwn: string }
  | { by: 'model'; model: string }
  | { by: 'size'; size: 'largest' | 'smallest' };

export interface PartitionSummary {
  path: string;
  sizeBytes: number;
  fstype: string | null;
  label: string | null;
  mountpoints: string[];
}

export interface DiskCandidate {
  path: string;
  sizeBytes: number;
  model: string | null;
  serial: string | null;
  wwn: string | null;
  transport: string | null;
  /** The disk's own signature (a filesystem directly on it, or the partition table type). */
  pttype: string | null;
  fstype: string | null;
  /** Where the whole disk itself is mounted (a filesystem without a partition table). */
  mountpoints: string[];
  partitions: PartitionSummary[];
  /** Why it cannot be installed to; null when it can. */
  refusal: string | null;
}

/** Optical drives are listed too (an installer medium is one), always refused. */
const WHOLE_DISK_TYPES = new Set(['disk', 'loop', 'rom']);
const clean = (s: string | null | undefined): string | null => (s === null || s === undefined || s.trim() === '' ? null : s.trim());

/**
 * Every whole disk of `lsblk -J -b -O` (no device argument), each with the reason it is
 * refused: the checks of `install to-disk --wipe` (running root, LVM/RAID/LUKS, mounted),
 * plus holding the install medium (`mediumDevices`: maj:min of the filesystems the image
 * is read from). Empty devices (size 0: unused loop and zram slots) are left out.
 */
export function parseDiskInventory(lsblkText: string, runningRoot: string | null, mediumDevices: readonly string[] = []): DiskCandidate[] {
  let doc: unknown;
  try {
    doc = JSON.parse(lsblkText);
  } catch {
    throw new UserError('lsblk printed something that is not JSON', { hint: 'check util-linux (lsblk >= 2.33 has -J)' });
  }
  const parsed = z.object({ blockdevices: z.array(lsblkDeviceSchema) }).safeParse(doc);
  if (!parsed.success) throw new UserError('lsblk output has no block device list', { hint: 'check util-linux (lsblk >= 2.33 has -J -O)' });
  const disks: DiskCandidate[] = [];
  for (const dev of parsed.data.blockdevices) {
    if (!WHOLE_DISK_TYPES.has(dev.type) || dev.size === 0) continue;
    const all = [...walkDevices(dev)];
    let refusal: string | null = null;
    const holdsMedium = all.some((d) => mediumDevices.includes(d['maj:min']));
    if (dev.type === 'rom') {
      refusal = holdsMedium ? `${dev.path} holds the install medium (the image is read from it)` : `${dev.path} is an optical drive: it cannot be installed to`;
    } else {
      try {
        checkInstallTarget({ device: dev, probe: {}, runningRoot }, true);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        refusal = err.message;
      }
    }
    if (refusal === null && holdsMedium) refusal = `${dev.path} holds the install medium (the image is read from it)`;
    disks.push({
      path: dev.path,
      sizeBytes: dev.size,
      model: clean(dev.model),
      serial: clean(dev.serial),
      wwn: clean(dev.wwn),
      transport: clean(dev.tran),
      pttype: clean(dev.pttype),
      fstype: clean(dev.fstype),
      mountpoints: (dev.mountpoints ?? []).filter((m): m is string => !!m),
      partitions: all
        .filter((d) => d !== dev)
        .map((d) => ({
          path: d.path,
          sizeBytes: d.size,
          fstype: clean(d.fstype),
          label: clean(d.label),
          mountpoints: (d.mountpoints ?? []).filter((m): m is string => !!m),
        })),
      refusal,
    });
  }
  return disks;
}

export function describeSelector(s: DiskSelector): string {
  return s.by === 'size' ? `the ${s.size} disk` : `${s.by} "${s.by === 'path' ? s.path : s.by === 'serial' ? s.serial : s.by === 'wwn' ? s.wwn : s.model}"`;
}

const listDisks = (disks: readonly DiskCandidate[]): string =>
  disks.length === 0 ? 'no disks' : disks.map((d) => `${d.path} (${formatSize(d.sizeBytes)}${d.model ? `, ${d.model}` : ''}${d.serial ? `, serial ${d.serial}` : ''})`).join(', ');

/**
 * The one usable disk `selector` names. Refused disks never match; a selector matching two
 * disks (same model, equal sizes) is refused rather than guessed.
 */
export function matchDisk(selector: DiskSelector, disks: readonly DiskCandidate[]): DiskCandidate {
  const usable = disks.filter((d) => d.refusal === null);
  if (selector.by === 'path') {
    const found = disks.find((d) => d.path === selector.path);
    if (found?.refusal) throw new UserError(`cannot install to ${found.path}: ${found.refusal}`, { hint: 'choose another disk in the answers file' });
    if (found) return found;
    throw new UserError(`no disk ${selector.path}`, { hint: `usable disks: ${listDisks(usable)}` });
  }
  let matches: DiskCandidate[];
  if (selector.by === 'size') {
    if (usable.length === 0) throw new UserError(`no disk matches ${describeSelector(selector)}: every disk is in use or holds the install medium`, { hint: 'attach an unused disk' });
    const sizes = usable.map((d) => d.sizeBytes);
    const want = selector.size === 'largest' ? Math.max(...sizes) : Math.min(...sizes);
    matches = usable.filter((d) => d.sizeBytes === want);
  } else {
    const field = selector.by;
    const wanted = selector.by === 'serial' ? selector.serial : selector.by === 'wwn' ? selector.wwn : selector.model;
    matches = usable.filter((d) => d[field] === wanted);
  }
  if (matches.length === 0) {
    throw new UserError(`no usable disk matches ${describeSelector(selector)}`, { hint: `usable disks: ${listDisks(usable)}` });
  }
  if (matches.length > 1) {
    throw new UserError(`${matches.length} disks match ${describeSelector(selector)}: ${listDisks(matches)}`, { hint: 'select the disk by serial, wwn or path instead' });
  }
  return matches[0]!;
}

/** The strongest identifier of a disk for a saved answers file: WWN, else serial, else path. */
export function selectorFor(disk: DiskCandidate): DiskSelector {
  if (disk.wwn) return { by: 'wwn', wwn: disk.wwn };
  if (disk.serial) return { by: 'serial', serial: disk.serial };
  return { by: 'path', path: disk.path };
}

/** The file or directory an image reference reads from, for local transports. */
export function localImagePath(source: string): string | null {
  const m = /^(oci|oci-archive|docker-archive):([^:]+)/.exec(source);
  return m ? m[2]! : null;
}

/** Loader: lsblk of all disks, the running root, and the disk the image is read from. */
export async function readDiskInventory(imageSource?: string): Promise<DiskCandidate[]> {
  return withContext('Listing disks', async () => {
    const lsblk = await run({ description: 'Listing block devices', argv: ['lsblk', '-J', '-b', '-O'] });
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    const medium: string[] = [];
    const local = imageSource !== undefined ? localImagePath(imageSource) : null;
    if (local !== null) {
      const st = await stat(local).catch(() => null);
      // st.dev packs major:minor as the kernel's new_encode_dev does.
      if (st) medium.push(`${(st.dev >> 8) & 0xfff}:${(st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)}`);
    }
    return parseDiskInventory(lsblk.stdout, rootDeviceNumbers(mountinfo), medium);
  });
}
