/**
 * The target disk of `bootc install to-disk`: what `lsblk -J -b -O` and `blkid -p` say about
 * it, and the checks that refuse to destroy anything in use. The checks are pure (table
 * tests on captured output in fixtures/lsblk/); reading the device is a thin loader.
 *
 * Refused, in this order (the first that applies is the one reported):
 *   1. not a whole disk (a partition, an LVM volume, a mapping)
 *   2. holds the running root filesystem
 *   3. part of an active LVM volume group, RAID array or open LUKS mapping
 *   4. anything on it mounted
 *   5. existing partitions or a filesystem signature, unless --wipe
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { run } from '../core/exec.js';
import { parseMountinfo } from '../core/mountinfo.js';
import { UserError, withContext } from '../core/errors.js';

const maybe = z.string().nullable().optional();
/** One device of `lsblk -J -b -O` with the columns the checks and the installer's disk list read. */
export const lsblkDeviceSchema: z.ZodType<LsblkDevice> = z.lazy(() =>
  z.object({
    name: z.string(),
    path: z.string(),
    type: z.string(),
    'maj:min': z.string(),
    size: z.number(),
    fstype: maybe,
    pttype: maybe,
    label: maybe,
    model: maybe,
    serial: maybe,
    wwn: maybe,
    tran: maybe,
    mountpoints: z.array(z.string().nullable()).optional(),
    children: z.array(lsblkDeviceSchema).optional(),
  }),
);

export interface LsblkDevice {
  name: string;
  path: string;
  type: string;
  'maj:min': string;
  size: number;
  fstype?: string | null | undefined;
  pttype?: string | null | undefined;
  label?: string | null | undefined;
  model?: string | null | undefined;
  serial?: string | null | undefined;
  wwn?: string | null | undefined;
  tran?: string | null | undefined;
  mountpoints?: Array<string | null> | undefined;
  children?: LsblkDevice[] | undefined;
}

/** Parses `lsblk -J -b -O DEVICE` output: the one device asked for, with its children. */
export function parseLsblk(text: string, device: string): LsblkDevice {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UserError(`lsblk printed something that is not JSON for ${device}`, { hint: 'check util-linux (lsblk >= 2.33 has -J)' });
  }
  const parsed = z.object({ blockdevices: z.array(lsblkDeviceSchema) }).safeParse(doc);
  if (!parsed.success || parsed.data.blockdevices.length !== 1) {
    throw new UserError(`lsblk did not describe exactly one device for ${device}`, { hint: 'give the path of a whole disk, e.g. /dev/vdb' });
  }
  return parsed.data.blockdevices[0]!;
}

/** Parses `blkid -p -o export` output (KEY=value lines). */
export function parseBlkidExport(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** The device numbers (`maj:min`) of the filesystem mounted at `/`, from /proc/self/mountinfo. */
export function rootDeviceNumbers(mountinfo: string): string | null {
  return parseMountinfo(mountinfo).find((m) => m.mountPoint === '/')?.devices ?? null;
}

export function* walkDevices(device: LsblkDevice): Generator<LsblkDevice> {
  yield device;
  for (const child of device.children ?? []) yield* walkDevices(child);
}

const mountpointsOf = (d: LsblkDevice): string[] => (d.mountpoints ?? []).filter((m): m is string => m !== null && m !== '');

/** What blkid found by probing the disk itself (lsblk has nothing to say without udev). */
export interface DeviceProbe {
  /** PTTYPE: a partition table is on the disk. */
  partitionTable?: string;
  /** TYPE: a filesystem (or LVM/RAID/LUKS signature) directly on the disk. */
  signature?: string;
}

export interface TargetFacts {
  device: LsblkDevice;
  probe: DeviceProbe;
  /** maj:min of the running root filesystem, if known. */
  runningRoot: string | null;
}

/** Child types that mean the disk is in use by the device mapper or md. */
const STACKED_TYPES = /^(lvm|crypt|dm|mpath|raid\d*|md)$/;
const WHOLE_DISK_TYPES = new Set(['disk', 'loop']);

const describeStack = (type: string): string =>
  type === 'lvm' ? 'an active LVM logical volume' : type === 'crypt' ? 'an open LUKS (dm-crypt) mapping' : type.startsWith('raid') || type === 'md' ? 'an active RAID array' : 'a device-mapper device';

/** Checks 1-5; throws the first refusal. */
export function checkInstallTarget(facts: TargetFacts, wipe: boolean): void {
  const { device } = facts;
  const path = device.path;
  if (!WHOLE_DISK_TYPES.has(device.type)) {
    throw new UserError(`${path} is not a whole disk (lsblk calls it "${device.type}")`, {
      hint: 'give the disk itself (e.g. /dev/vdb, not /dev/vdb1); to install onto a filesystem you prepared, use `bootc install to-filesystem`',
    });
  }
  const all = [...walkDevices(device)];
  const holdingRoot = all.find((d) => mountpointsOf(d).includes('/') || (facts.runningRoot !== null && d['maj:min'] === facts.runningRoot));
  if (holdingRoot) {
    throw new UserError(`${path} holds the running system's root filesystem${holdingRoot === device ? '' : ` (on ${holdingRoot.path})`}`, {
      hint: 'install to another disk; to replace the running system use `bootc install to-filesystem --replace alongside`',
    });
  }
  const stacked = all.find((d) => d !== device && STACKED_TYPES.test(d.type));
  if (stacked) {
    throw new UserError(`${path} is in use: ${stacked.path} is ${describeStack(stacked.type)} on it`, {
      hint: `stop using it first (e.g. \`vgchange -an\`, \`cryptsetup close\`, \`mdadm --stop\`), then run again with --wipe`,
    });
  }
  const mounted = all.find((d) => mountpointsOf(d).length > 0);
  if (mounted) {
    throw new UserError(`${mounted.path} is mounted at ${mountpointsOf(mounted).join(', ')}`, {
      hint: `unmount it first (\`umount ${mountpointsOf(mounted)[0]}\`); bootc never wipes a mounted filesystem`,
    });
  }
  if (wipe) return;
  const partitions = all.filter((d) => d.type === 'part');
  if (partitions.length > 0 || facts.probe.partitionTable) {
    const what = partitions.length > 0 ? partitions.map((p) => p.path).join(', ') : `a ${facts.probe.partitionTable} partition table`;
    throw new UserError(`Detected existing partitions on ${path}: ${what}`, {
      hint: `use e.g. \`wipefs -a ${path}\` or pass --wipe to erase the disk`,
    });
  }
  const signature = device.fstype ?? facts.probe.signature;
  if (signature) {
    throw new UserError(`${path} holds a ${signature} signature`, { hint: `use e.g. \`wipefs -a ${path}\` or pass --wipe to erase the disk` });
  }
}

/** Loader: lsblk, blkid and /proc/self/mountinfo for `path`. */
export async function readTargetFacts(path: string): Promise<TargetFacts> {
  return withContext(`Listing device ${path}`, async () => {
    const lsblk = await run({
      description: `Listing block device ${path}`,
      argv: ['lsblk', '-J', '-b', '-O', path],
      hint: `check that ${path} is a block device`,
    });
    const device = parseLsblk(lsblk.stdout, path);
    // Exit code 2: nothing found (a blank disk).
    const blkid = await run({ description: `Probing ${path} for signatures`, argv: ['blkid', '-p', '-o', 'export', path], okExitCodes: [2] });
    const probed = parseBlkidExport(blkid.stdout);
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    return {
      device,
      probe: {
        ...(probed['PTTYPE'] ? { partitionTable: probed['PTTYPE'] } : {}),
        ...(probed['TYPE'] ? { signature: probed['TYPE'] } : {}),
      },
      runningRoot: rootDeviceNumbers(mountinfo),
    };
  });
}

/**
 * --wipe: erase the signatures of every partition and then of the disk (upstream's
 * `wipefs -a` on each). The disk was checked unmounted before, so this never reaches into
 * a mounted filesystem.
 */
export async function wipeDevice(device: LsblkDevice): Promise<void> {
  const all = [...walkDevices(device)].reverse();
  for (const d of all) {
    await run({ description: `Erasing the signatures on ${d.path}`, argv: ['wipefs', '-a', '-q', d.path] });
  }
}
