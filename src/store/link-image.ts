/**
 * An image's store content, from one store into another physical root's: the objects of
 * every layer of the image (upper layers' whiteouts included, as an import writes them),
 * the layer indexes, and the image directory (tree index, config). Files are hardlinked,
 * as objects and indexes are never changed in place (they are replaced by rename); across
 * filesystems they are copied. The result is the store a fresh import of the image would
 * have left, without reading a layer.
 *
 * `image build-disk --store` keeps its object store between builds and stages each disk's
 * root from it this way, so a rebuild imports only the layers that changed.
 */
import { linkSync } from 'node:fs';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { withContext } from '../core/errors.js';
import { warn } from '../core/log.js';
import { imageDir, layerIndexPath, objectPath, prepareStore, storeLayout, type StoreLayout } from './layout.js';
import type { TreeIndex } from './index-format.js';
import { objectsOfLayer } from './store-contents.js';

export interface LinkedImage {
  objects: number;
  /** False when the two roots are on different filesystems and files were copied. */
  hardlinked: boolean;
}

/** Files in flight when they must be copied (links are made synchronously, one short system call each). */
const CONCURRENCY = 32;

/** `tree`: the image's tree as the import into `fromRoot` returned it (not decoded again). */
export async function linkImageInto(fromRoot: string, toRoot: string, tree: TreeIndex): Promise<LinkedImage> {
  const { manifestDigest, layers: diffIds } = tree.header;
  return withContext(`Staging image ${manifestDigest} from the store under ${fromRoot}`, async () => {
    const from = storeLayout(fromRoot);
    const to = storeLayout(toRoot);
    await prepareStore(to);
    const objects = new Set<string>();
    for (const e of tree.entries) if (e.kind === 'file') objects.add(e.object);
    for (const diffId of diffIds) await objectsOfLayer(from, diffId, objects);

    let hardlinked = true;
    const place = async (source: string, dest: string): Promise<void> => {
      if (hardlinked) {
        try {
          linkSync(source, dest);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
          if (hardlinked) warn(`${fromRoot} and ${toRoot} are on different filesystems: the store's files are copied, not linked`);
          hardlinked = false;
        }
      }
      await copyFile(source, dest);
    };

    // Paths made as they are placed: 100k pairs of them at once would be 40 MB.
    await placeAll(
      (function* () {
        for (const id of objects) yield [objectPath(from, id), objectPath(to, id)] as const;
        for (const diffId of diffIds) yield [layerIndexPath(from, diffId), layerIndexPath(to, diffId)] as const;
      })(),
      place,
    );
    const fromImage = imageDir(from, manifestDigest);
    const toImage = await makeImageDir(to, manifestDigest);
    await placeAll(
      (await readdir(fromImage)).map((name) => [join(fromImage, name), join(toImage, name)]),
      place,
    );
    return { objects: objects.size, hardlinked };
  });
}

async function makeImageDir(layout: StoreLayout, manifestDigest: string): Promise<string> {
  const dir = imageDir(layout, manifestDigest);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/** `CONCURRENCY` workers share one iterator of (source, dest) pairs. */
async function placeAll(files: Iterable<readonly [string, string]>, place: (source: string, dest: string) => Promise<void>): Promise<void> {
  const pairs = files[Symbol.iterator]();
  const worker = async (): Promise<void> => {
    for (let next = pairs.next(); !next.done; next = pairs.next()) await place(next.value[0], next.value[1]);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}
