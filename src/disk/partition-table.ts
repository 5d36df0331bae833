/**
 * Applies a planned GPT to a disk image FILE with sfdisk (no loop device), and reads a
 * table back from `sfdisk --json` output.
 */
import { run } from '../core/exec.js';
import { UserError } from '../core/errors.js';
import { SECTOR_BYTES, renderSfdiskScript, type DiskLayout } from './gpt.js';

export async function writePartitionTable(imagePath: string, layout: DiskLayout, diskGuid?: string): Promise<void> {
  await run({
    description: `Writing the partition table of ${imagePath}`,
    // --no-reread/--no-tell-kernel: a file, not a block device.
    argv: ['sfdisk', '--quiet', '--no-reread', '--no-tell-kernel', '--wipe', 'always', imagePath],
    stdin: renderSfdiskScript(layout, diskGuid),
  });
}

export interface PartitionTableEntry {
  node: string;
  startBytes: number;
  sizeBytes: number;
  typeGuid: string;
  name?: string;
  uuid?: string;
}

export interface PartitionTable {
  label: string;
  id: string;
  partitions: PartitionTableEntry[];
}

interface SfdiskJson {
  partitiontable?: {
    label?: string;
    id?: string;
    sectorsize?: number;
    partitions?: Array<{ node: string; start: number; size: number; type: string; name?: string; uuid?: string }>;
  };
}

/** Parses `sfdisk --json` output. */
export function parseSfdiskJson(text: string): PartitionTable {
  let doc: SfdiskJson;
  try {
    doc = JSON.parse(text) as SfdiskJson;
  } catch {
    throw new UserError('sfdisk printed something that is not JSON', { hint: 'check the sfdisk version (util-linux >= 2.27)' });
  }
  const table = doc.partitiontable;
  if (!table?.label) throw new UserError('sfdisk found no partition table', { hint: 'write one first' });
  const sector = table.sectorsize ?? SECTOR_BYTES;
  return {
    label: table.label,
    id: table.id ?? '',
    partitions: (table.partitions ?? []).map((p) => ({
      node: p.node,
      startBytes: p.start * sector,
      sizeBytes: p.size * sector,
      typeGuid: p.type.toUpperCase(),
      ...(p.name !== undefined ? { name: p.name } : {}),
      ...(p.uuid !== undefined ? { uuid: p.uuid } : {}),
    })),
  };
}

export async function readPartitionTable(imagePath: string): Promise<PartitionTable> {
  const r = await run({ description: `Reading the partition table of ${imagePath}`, argv: ['sfdisk', '--json', imagePath] });
  return parseSfdiskJson(r.stdout);
}
