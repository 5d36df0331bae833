/**
 * Loop devices and partition device nodes for an install.
 *
 * After sfdisk writes the table the kernel re-reads it and udev creates `/dev/<disk>p<N>`
 * (or `/dev/<disk><N>`); we settle udev and wait for the nodes. A kernel without GPT
 * support (seen on a build VM here: CONFIG_EFI_PARTITION off) never creates them, and then
 * each partition is reached through a loop device over its byte range of the disk instead:
 * the data lands in the same sectors either way.
 */
import { readdir, stat } from 'node:fs/promises';
import { pathExists } from '../core/fs-probe.js';
import { basename, join } from 'node:path';
import { run } from '../core/exec.js';
import { UserError, withContext } from '../core/errors.js';
import { debug } from '../core/log.js';
import type { PlannedPartition } from '../disk/gpt.js';

/** How long udev gets to create partition nodes the kernel already knows about. */
const PARTITION_NODE_WAIT_MS = 10_000;
const POLL_MS = 100;

export async function attachLoopDevice(file: string, range?: { offsetBytes: number; sizeBytes: number }): Promise<string> {
  const argv: [string, ...string[]] = range
    ? ['losetup', '--find', '--show', '--offset', String(range.offsetBytes), '--sizelimit', String(range.sizeBytes), file]
    : ['losetup', '--find', '--show', '--partscan', file];
  const r = await run({
    description: `Attaching ${file} to a loop device`,
    argv,
    hint: 'loop devices need root and a kernel with loop support (modprobe loop)',
  });
  return r.stdout.trim();
}

/** Loop devices already backed by `file` (`losetup -j`), e.g. one a user left attached. */
export async function loopDevicesOf(file: string): Promise<string[]> {
  const r = await run({ description: `Looking for loop devices backed by ${file}`, argv: ['losetup', '--list', '--noheadings', '--output', 'NAME', '--associated', file] });
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

export async function detachLoopDevice(device: string): Promise<void> {
  await run({ description: `Detaching loop device ${device}`, argv: ['losetup', '--detach', device] });
}

/** The kernel's name for partition `number` of `disk`: a `p` separator after a trailing digit. */
export function partitionNodeName(disk: string, number: number): string {
  const name = basename(disk);
  return /\d$/.test(name) ? `${name}p${number}` : `${name}${number}`;
}

/** Partition nodes of `disk`, and what to undo when the install is over. */
export interface PartitionNodes {
  nodes: Map<number, string>;
  /** True when loop devices stand in for partitions the kernel did not expose. */
  viaLoop: boolean;
  release(): Promise<void>;
}

async function kernelKnowsPartitions(disk: string): Promise<boolean> {
  const name = basename(disk);
  try {
    return (await readdir(join('/sys/class/block', name))).some((entry) => entry.startsWith(name) && entry !== name);
  } catch {
    return false;
  }
}

/** No udev daemon (containers, minimal live systems): settle fails, the kernel alone decides. */
async function settleUdev(): Promise<void> {
  await run({ description: 'Waiting for udev', argv: ['udevadm', 'settle', '--timeout=30'], okExitCodes: [1, 2, 3, 4] }).catch((err: unknown) => {
    debug(`udevadm settle: ${String(err)}`);
  });
}

/** Tries of BLKRRPART while the disk is busy, and the pause before the next (times the try). */
const REREAD_TRIES = 6;
const REREAD_PAUSE_MS = 500;

/**
 * The kernel reads the new table. Right after sfdisk, udev's probe of the disk (started by
 * the table change) can hold it open and the kernel answers EBUSY: seen in a live system
 * under qemu. Such a disk is let go once udev settles, so it is asked again; a table the
 * kernel still cannot read after that is an error.
 */
async function rereadPartitionTable(disk: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const r = await run({ description: `Re-reading the partition table of ${disk}`, argv: ['blockdev', '--rereadpt', disk], okExitCodes: attempt < REREAD_TRIES ? [1] : [] });
    if (r.exitCode === 0) return;
    debug(`${disk} busy on re-reading its partition table (try ${attempt}): ${r.stderr.trim()}`);
    await settleUdev();
    await new Promise((resolve) => setTimeout(resolve, REREAD_PAUSE_MS * attempt));
  }
}

/** After the partition table is written: the node of each planned partition. */
export async function openPartitionNodes(disk: string, partitions: readonly PlannedPartition[]): Promise<PartitionNodes> {
  return withContext(`Waiting for the partitions of ${disk}`, async () => {
    await rereadPartitionTable(disk);
    await settleUdev();
    if (await kernelKnowsPartitions(disk)) {
      const nodes = new Map<number, string>();
      const deadline = Date.now() + PARTITION_NODE_WAIT_MS;
      for (const p of partitions) {
        const node = `/dev/${partitionNodeName(disk, p.number)}`;
        while (!(await pathExists(node))) {
          if (Date.now() > deadline) {
            throw new UserError(`the partition node ${node} did not appear`, {
              hint: 'check that udev runs (or that /dev is a devtmpfs) and retry with --wipe',
            });
          }
          await new Promise((r) => setTimeout(r, POLL_MS));
        }
        nodes.set(p.number, node);
      }
      return { nodes, viaLoop: false, release: async () => undefined };
    }
    debug(`${disk}: the kernel exposed no partitions; using loop devices over the partition ranges`);
    const attached: string[] = [];
    const release = async (): Promise<void> => {
      for (const loop of attached.reverse()) await detachLoopDevice(loop);
      attached.length = 0;
    };
    try {
      const nodes = new Map<number, string>();
      for (const p of partitions) {
        const loop = await attachLoopDevice(disk, { offsetBytes: p.startBytes, sizeBytes: p.sizeBytes });
        attached.push(loop);
        nodes.set(p.number, loop);
      }
      return { nodes, viaLoop: true, release };
    } catch (err) {
      await release();
      throw err;
    }
  });
}

/** The size of a block device or regular file in bytes. */
export async function deviceSizeBytes(path: string): Promise<number> {
  const st = await stat(path);
  if (st.isFile()) return st.size;
  const r = await run({ description: `Reading the size of ${path}`, argv: ['blockdev', '--getsize64', path] });
  return Number(r.stdout.trim());
}
