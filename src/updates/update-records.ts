/**
 * Small records the update commands leave for `bootc status`:
 *
 *   cached-update.json      the image `bootc upgrade --check` found (status `cachedUpdate`);
 *                           removed once that image, or a newer one, is staged or booted
 *   <id>.etc-conflicts      one line per /etc merge conflict, written when the deployment
 *                           was finalised
 *   retained-images.json    images `bootc switch --retain` keeps in the store after the
 *                           deployments using them are gone (switching back then fetches
 *                           nothing); an image leaves the list when a switch deploys it again
 *
 * All are advisory: a missing or damaged record reads as "nothing recorded" (a retained
 * image is then collected, and fetched again if it is ever wanted).
 */
import { readFile, rm } from 'node:fs/promises';
import { sysrootPaths } from '../deploy/paths.js';
import { object, parseRecordOrNull, recordCheck, string } from '../core/record.js';
import { writeFileAtomic } from '../core/durable-file.js';

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

const cachedUpdateCheck = recordCheck({ imageDigest: string, image: object({ image: string, transport: string }) });

export async function readCachedUpdate(sysroot: string): Promise<CachedUpdate | null> {
  const text = await readFile(sysrootPaths(sysroot).cachedUpdate, 'utf8').catch(() => null);
  const doc = text === null ? null : parseRecordOrNull<Partial<CachedUpdate> & Pick<CachedUpdate, 'image' | 'imageDigest'>>(text, cachedUpdateCheck);
  if (doc === null) return null;
  return {
    image: { image: doc.image.image, transport: doc.image.transport },
    version: typeof doc.version === 'string' ? doc.version : null,
    timestamp: typeof doc.timestamp === 'string' ? doc.timestamp : null,
    imageDigest: doc.imageDigest,
    architecture: typeof doc.architecture === 'string' ? doc.architecture : '',
  };
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

export interface RetainedImage {
  image: { image: string; transport: string };
  imageDigest: string;
}

const retainedImageCheck = recordCheck({ imageDigest: string, image: object({ image: string, transport: string }) });

export async function readRetainedImages(sysroot: string): Promise<RetainedImage[]> {
  const text = await readFile(sysrootPaths(sysroot).retainedImages, 'utf8').catch(() => null);
  const doc = text === null ? null : parseRecordOrNull<unknown[]>(text, (d) => (Array.isArray(d) ? null : 'not a JSON array'));
  // An entry this version cannot read is dropped; the others are still retained.
  return (doc ?? []).flatMap((d) => {
    if (retainedImageCheck(d) !== null) return [];
    const r = d as RetainedImage;
    return [{ image: { image: r.image.image, transport: r.image.transport }, imageDigest: r.imageDigest }];
  });
}

/**
 * After a switch staged `deployedDigest`: that image no longer needs retaining (a deployment
 * uses it); with --retain, `retain` (the image switched away from) joins the list.
 */
export async function updateRetainedImages(sysroot: string, deployedDigest: string, retain: RetainedImage | null): Promise<void> {
  const before = await readRetainedImages(sysroot);
  const after = before.filter((r) => r.imageDigest !== deployedDigest && r.imageDigest !== retain?.imageDigest);
  if (retain && retain.imageDigest !== deployedDigest) after.push(retain);
  if (after.length === before.length && after.every((r, i) => r.imageDigest === before[i]!.imageDigest)) return;
  const path = sysrootPaths(sysroot).retainedImages;
  if (after.length === 0) await rm(path, { force: true });
  else await writeFileAtomic(path, JSON.stringify(after, null, 2) + '\n', 0o644);
}
