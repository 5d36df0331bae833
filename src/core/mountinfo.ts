/** /proc/self/mountinfo, as proc(5) lays it out. */
import { readFile } from 'node:fs/promises';

export interface Mount {
  /** `maj:min` of the filesystem. */
  devices: string;
  /** The directory of the filesystem that is mounted here (a bind mount's source). */
  root: string;
  mountPoint: string;
  /** Per-mount options: `ro` or `rw` first. */
  options: string[];
  fsType: string;
  source: string;
  /** Filesystem options (overlayfs: lowerdir=, upperdir=, …). */
  superOptions: string[];
}

/** Octal escapes (`\040` for a space) as the kernel writes them. */
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6) continue;
    mounts.push({
      devices: fields[2]!,
      root: unescape(fields[3]!),
      mountPoint: unescape(fields[4]!),
      options: fields[5]!.split(','),
      fsType: fields[dash + 1] ?? '',
      source: unescape(fields[dash + 2] ?? ''),
      superOptions: (fields[dash + 3] ?? '').split(',').filter((o) => o !== '').map(unescape),
    });
  }
  return mounts;
}

/** The mount visible at `path` (the last one mounted there), or null. */
export function mountAt(mounts: readonly Mount[], path: string): Mount | null {
  return mounts.findLast((m) => m.mountPoint === path) ?? null;
}

/** The mount holding `path`: the one at its longest mounted prefix. */
export function mountHolding(mounts: readonly Mount[], path: string): Mount | null {
  let best: Mount | null = null;
  for (const m of mounts) {
    const inside = path === m.mountPoint || path.startsWith(m.mountPoint === '/' ? '/' : `${m.mountPoint}/`);
    if (inside && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

export async function readMountinfo(path = '/proc/self/mountinfo'): Promise<Mount[]> {
  return parseMountinfo(await readFile(path, 'utf8'));
}
