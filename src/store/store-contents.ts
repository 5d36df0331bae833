/**
 * Listing what a store holds: objects on disk, layer indexes, image trees, and the objects
 * each index references. Shared by fsck and gc, which must agree on what "referenced" means.
 */
import { readFile } from 'node:fs/promises';
import { readdirOrEmpty } from '../core/fs-probe.js';
import { join } from 'node:path';
import { objectIdsOfIndex } from './index-format.js';
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
export async function listObjects(layout: StoreLayout): Promise<ObjectListing> {
  const all: ObjectListing = { objects: [], temps: [], strays: [] };
  const lists = await Promise.all(FANOUT_DIRS.map((d) => listObjectDir(layout, d)));
  for (const list of lists) {
    all.objects.push(...list.objects);
    all.temps.push(...list.temps);
    all.strays.push(...list.strays);
  }
  return all;
}

export interface ObjectListing {
  objects: StoredObject[];
  temps: string[];
  strays: string[];
}

/** The same, for one fan-out directory (GC goes through them one at a time). */
export async function listObjectDir(layout: StoreLayout, fanoutDir: string): Promise<ObjectListing> {
  const listing: ObjectListing = { objects: [], temps: [], strays: [] };
  for (const name of await readdirOrEmpty(join(layout.objectsDir, fanoutDir))) {
    const id = fanoutDir + name;
    const path = join(layout.objectsDir, fanoutDir, name);
    if (isObjectId(id)) listing.objects.push({ id, path });
    else if (isTempName(name)) listing.temps.push(path);
    else listing.strays.push(path);
  }
  return listing;
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
  objectIdsOfIndex(await readFile(path, 'utf8'), path, 'layer', into);
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
  return objectIdsOfIndex(text, path, 'tree', into).layers;
}
