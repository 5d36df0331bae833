/**
 * Small records the update commands leave for `bootc status`:
 *
 *   cached-update.json      the image `bootc upgrade --check` found (status `cachedUpdate`);
 *                           removed once that image, or a newer one, is staged or booted
 *   <id>.etc-conflicts      one line per /etc merge conflict, written when the deployment
 *                           was finalised
 *
 * Both are advisory: a missing or damaged record reads as "nothing recorded".
 */
import { readFile, rm } from 'node:fs/promises';
import { sysrootPaths } from '../deploy/paths.js';
import { writeFileAtomic } from '../store/layout.js';

export interface CachedUpdate {
  image: { image: string; transport: string };
  version: string | null;
  timestamp: string | null;
  imageDigest: string;
  architecture: string;
}

export async function recordCachedUpdate(sysroot: string, update: CachedUpdate | null): Promise<void> {
  const path = sysrootPaths(sysroot).cachedUpdate;
  if (update === null) await rm(path, { force: true });
  else await writeFileAtomic(path, JSON.stringify(update, null, 2) + '\n', 0o644);
}

export async function readCachedUpdate(sysroot: string): Promise<CachedUpdate | null> {
  try {
    const doc = JSON.parse(await readFile(sysrootPaths(sysroot).cachedUpdate, 'utf8')) as Partial<CachedUpdate>;
    if (typeof doc.imageDigest !== 'string' || typeof doc.image?.image !== 'string' || typeof doc.image.transport !== 'string') return null;
    return {
      image: { image: doc.image.image, transport: doc.image.transport },
      version: typeof doc.version === 'string' ? doc.version : null,
      timestamp: typeof doc.timestamp === 'string' ? doc.timestamp : null,
      imageDigest: doc.imageDigest,
      architecture: typeof doc.architecture === 'string' ? doc.architecture : '',
    };
  } catch {
    return null;
  }
}

export async function recordEtcConflicts(sysroot: string, stateroot: string, id: string, conflicts: readonly string[]): Promise<void> {
  const path = sysrootPaths(sysroot).etcConflicts(stateroot, id);
  if (conflicts.length === 0) await rm(path, { force: true });
  else await writeFileAtomic(path, conflicts.map((c) => c.replace(/\n/g, ' ')).join('\n') + '\n', 0o644);
}

export async function readEtcConflicts(sysroot: string, stateroot: string, id: string): Promise<string[]> {
  try {
    return (await readFile(sysrootPaths(sysroot).etcConflicts(stateroot, id), 'utf8')).split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}
