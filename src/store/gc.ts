/**
 * Garbage collection of the store, given the images that must stay (the caller's GC policy:
 * booted, staged, rollback, pinned).
 *
 * 1. Refuse while an import is running (its objects may not be referenced by any index yet).
 * 2. Image trees not in the live set are removed; a live image without a tree is an error,
 *    since we could not know what it references.
 * 3. Layer indexes that no live image lists are removed.
 * 4. An object is live if a live tree OR a live layer index references it. Layer indexes
 *    count because a kept index promises "this layer is imported": a file that an upper
 *    layer whites out is still part of the lower layer, and another image may reuse that
 *    layer without importing it again.
 * 5. Everything else in objects/ goes, with leftover temp files and the markers of imports
 *    a crash cut short (the objects those may have left half-written are unreferenced, so
 *    step 5 has just removed them).
 */
import { readdir, readFile, rm, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { processRuns } from '../core/process.js';
import { FANOUT_DIRS, imageDir, layerIndexPath, storeLayout, type StoreLayout } from './layout.js';
import { listIndexes, listObjectDir, objectsOfImage, objectsOfLayer } from './store-contents.js';
import { decimalBytes } from '../core/progress.js';

export interface GcOptions {
  /** Report what would go, remove nothing. */
  dryRun?: boolean;
}

export interface GcResult {
  imagesRemoved: string[];
  layersRemoved: string[];
  objectsRemoved: number;
  /**
   * Bytes the removed objects occupied (st_blocks) and no checkout still links to, so the
   * space really comes back.
   */
  bytesFreed: number;
  objectsKept: number;
  tempFilesRemoved: number;
}

export async function gcStore(root: string, liveImages: Iterable<string>, options: GcOptions = {}): Promise<GcResult> {
  return withContext(`Removing unused content from the store under ${root}`, async () => {
    const layout = storeLayout(root);
    const dry = options.dryRun ?? false;
    const live = new Set(liveImages);
    await refuseIfImporting(layout);

    const { layers, images } = await listIndexes(layout);
    const liveObjects = new Set<string>();
    const liveLayers = new Set<string>();
    for (const digest of live) {
      const diffIds = images.includes(digest) ? await objectsOfImage(layout, digest, liveObjects) : null;
      if (!diffIds) {
        throw new UserError(`Image ${digest} is to be kept, but the store has no tree for it`, {
          hint: 'pull that image again before cleaning up, or leave it out of the images to keep',
        });
      }
      for (const diffId of diffIds) liveLayers.add(diffId);
    }
    for (const diffId of liveLayers) {
      if (layers.includes(diffId)) await objectsOfLayer(layout, diffId, liveObjects);
    }

    const result: GcResult = {
      imagesRemoved: images.filter((d) => !live.has(d)),
      layersRemoved: layers.filter((d) => !liveLayers.has(d)),
      objectsRemoved: 0,
      bytesFreed: 0,
      objectsKept: 0,
      tempFilesRemoved: 0,
    };
    if (!dry) {
      // Indexes first: if we are interrupted, nothing left claims an object we removed.
      for (const d of result.imagesRemoved) await rm(imageDir(layout, d), { recursive: true, force: true });
      for (const d of result.layersRemoved) await rm(layerIndexPath(layout, d), { force: true });
    }

    const temps: string[] = [];
    // One fan-out directory at a time: a listing of all 100k objects at once would be 30 MB.
    for (const fanoutDir of FANOUT_DIRS) {
      const listing = await listObjectDir(layout, fanoutDir);
      temps.push(...listing.temps);
      for (const o of listing.objects) {
        if (liveObjects.has(o.id)) {
          result.objectsKept++;
          continue;
        }
        const st = await lstat(o.path);
        if (st.nlink <= 1) result.bytesFreed += st.blocks * 512;
        if (!dry) await rm(o.path, { force: true });
        result.objectsRemoved++;
      }
    }

    const tmpDirFiles = (await readdir(layout.tmpDir).catch(() => [] as string[])).map((n) => join(layout.tmpDir, n));
    for (const path of [...temps, ...tmpDirFiles]) {
      if (!dry) await rm(path, { force: true, recursive: true });
      result.tempFilesRemoved++;
    }
    if (!dry) {
      for (const name of await readdir(layout.layersDir).catch(() => [] as string[])) {
        if (name.endsWith('.importing')) await rm(join(layout.layersDir, name), { force: true });
      }
    }
    return result;
  });
}

/** An import in progress is a marker from this boot whose process still runs. */
async function refuseIfImporting(layout: StoreLayout): Promise<void> {
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  for (const name of await readdir(layout.layersDir).catch(() => [] as string[])) {
    if (!name.endsWith('.importing')) continue;
    let marker: { pid?: number; bootId?: string };
    try {
      marker = JSON.parse(await readFile(join(layout.layersDir, name), 'utf8')) as typeof marker;
    } catch {
      continue;
    }
    if (marker.bootId === bootId && typeof marker.pid === 'number' && processRuns(marker.pid)) {
      throw new UserError(`A layer import is running (process ${marker.pid}, ${name.replace(/\.importing$/, '')})`, {
        hint: 'wait for the pull to finish, then clean up',
      });
    }
  }
}

/** The line upstream bootc prints after pruning: `Pruned images: N (layers: N, objsize: …)`. */
export function formatGcSummary(r: GcResult): string {
  return `Pruned images: ${r.imagesRemoved.length} (layers: ${r.layersRemoved.length}, objsize: ${decimalBytes(r.bytesFreed)})`;
}
