/**
 * Listing what a store holds: objects on disk, layer indexes, image trees, and the objects
 * each index references. Shared by fsck and gc, which must agree on what "referenced" means.
 */
import { readFile } from 'node:fs/promises';
import { readdirOrEmpty } from '../core/fs-probe.js';
import { join } from 'node:path';
import { decodeLayerIndex, decodeTreeIndex } from './index-format.js';
import { FANOUT_DIRS, isDigest, layerIndexPath, treeIndexPath, type StoreLayout } from './layout.js';
import { isObjectId } from './object-id.js';
import { isTempName } from '../core/durable-file.js';

export interface StoredObject {
  id: string;
  path: string;
}

/**
 * Every file in the fan-out directories: objects, temp files of imports (`.tmp-*`), and
 * `strays`, names that are neither.
 */
export async function listObjects(
  layout: StoreLayout,
): Promise<{ objects: StoredObject[]; temps: string[]; strays: string[] }> {
  const objects: StoredObject[] = [];
  const temps: string[] = [];
  const strays: string[] = [];
  const lists = await Promise.all(FANOUT_DIRS.map((d) => readdirOrEmpty(join(layout.objectsDir, d))));
  FANOUT_DIRS.forEach((d, i) => {
    for (const name of lists[i] as string[]) {
      const id = d + name;
      const path = join(layout.objectsDir, d, name);
      if (isObjectId(id)) objects.push({ id, path });
      else if (isTempName(name)) temps.push(path);
      else strays.push(path);
    }
  });
  return { objects, temps, strays };
}

/** Diff ids with a layer index, manifest digests with an image directory. */
export async function listIndexes(layout: StoreLayout): Promise<{ layers: string[]; images: string[] }> {
  const layers = (await readdirOrEmpty(layout.layersDir))
    .filter((n) => n.endsWith('.index'))
    .map((n) => n.slice(0, -'.index'.length))
    .filter(isDigest);
  const images = (await readdirOrEmpty(layout.imagesDir)).filter(isDigest);
  return { layers, images };
}

export async function objectsOfLayer(layout: StoreLayout, diffId: string, into: Set<string>): Promise<void> {
  const path = layerIndexPath(layout, diffId);
  for (const e of decodeLayerIndex(await readFile(path, 'utf8'), path).entries) if (e.kind === 'file') into.add(e.object);
}

/**
 * Adds the tree's objects to `into` and returns the image's layer diff ids, or null when
 * the image directory has no tree (a pull that did not finish).
 */
export async function objectsOfImage(layout: StoreLayout, manifestDigest: string, into: Set<string>): Promise<string[] | null> {
  const path = treeIndexPath(layout, manifestDigest);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const tree = decodeTreeIndex(text, path);
  for (const e of tree.entries) if (e.kind === 'file') into.add(e.object);
  return tree.header.layers;
}
