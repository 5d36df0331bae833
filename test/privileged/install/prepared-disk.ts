/**
 * A disk image "prepared by hand" for `install to-filesystem` tests: GPT with an ESP and a
 * root partition, each reached through a loop device over its byte range (the kernel here
 * may not expose partitions), FAT on the ESP, the chosen filesystem on the root, mounted.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readPartitionTable } from '../../../src/disk/partition-table.js';

const sh = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });

export interface PreparedDisk {
  file: string;
  esp: string;
  root: string;
  mountDir: string;
  /** Unmount and detach; safe to call twice. */
  release(): void;
}

export async function prepareDisk(dir: string, name: string, fsType: 'ext4' | 'xfs', options: { formatEsp?: boolean } = {}): Promise<PreparedDisk> {
  const file = join(dir, `${name}.raw`);
  sh('truncate', '-s', '4G', file);
  sh('sh', '-c', `printf 'label: gpt\\nsize=1G, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI-SYSTEM"\\ntype=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"\\n' | sfdisk -q ${file}`);
  const table = await readPartitionTable(file);
  const loops: string[] = [];
  const attach = (start: number, size: number): string => {
    const loop = sh('losetup', '--find', '--show', '--offset', String(start), '--sizelimit', String(size), file).trim();
    loops.push(loop);
    return loop;
  };
  const [espPart, rootPart] = table.partitions;
  const esp = attach(espPart!.startBytes, espPart!.sizeBytes);
  const root = attach(rootPart!.startBytes, rootPart!.sizeBytes);
  if (options.formatEsp ?? true) sh('mkfs.fat', '-F', '32', '-n', 'EFI-SYSTEM', esp);
  if (fsType === 'xfs') sh('mkfs.xfs', '-q', '-f', root);
  else sh('mkfs.ext4', '-q', '-F', root);
  const mountDir = join(dir, `${name}-root`);
  mkdirSync(mountDir, { recursive: true });
  sh('mount', root, mountDir);
  let mounted = true;
  return {
    file,
    esp,
    root,
    mountDir,
    release() {
      if (mounted) sh('umount', mountDir);
      mounted = false;
      for (const loop of loops.splice(0).reverse()) sh('losetup', '--detach', loop);
    },
  };
}
