/**
 * Where the store keeps things under a physical root (a mounted target filesystem, or the
 * staging directory of a disk image):
 *
 *   <root>/bootc/objects/ab/cdef…              immutable file objects (object-id.ts)
 *   <root>/bootc/objects/tmp/                  objects being written; renamed into place
 *   <root>/bootc/layers/<diff-id>.index        per-layer import result (index-format.ts)
 *   <root>/bootc/layers/<diff-id>.importing    marker of an import in progress
 *   <root>/bootc/images/<manifest-digest>/     tree.index (+ manifest.json, config.json by the caller)
 *
 * Temp files live inside objects/ so the final rename never crosses a filesystem.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';

export interface StoreLayout {
  readonly root: string;
  readonly bootcDir: string;
  readonly objectsDir: string;
  readonly tmpDir: string;
  readonly layersDir: string;
  readonly imagesDir: string;
}

export function storeLayout(root: string): StoreLayout {
  const bootcDir = join(root, 'bootc');
  const objectsDir = join(bootcDir, 'objects');
  return {
    root,
    bootcDir,
    objectsDir,
    tmpDir: join(objectsDir, 'tmp'),
    layersDir: join(bootcDir, 'layers'),
    imagesDir: join(bootcDir, 'images'),
  };
}

/** The fan-out directory names: two hex digits of the id. */
export const FANOUT_DIRS: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function objectPath(layout: StoreLayout, id: string): string {
  return join(layout.objectsDir, id.slice(0, 2), id.slice(2));
}

const DIGEST_RE = /^[a-z0-9]+:[0-9a-f]{32,128}$/;

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

export function checkDigest(digest: string, what: string): string {
  if (!DIGEST_RE.test(digest)) {
    throw new UserError(`${what} ${JSON.stringify(digest)} is not a digest`, {
      hint: 'expected the form sha256:<64 hex digits>',
    });
  }
  return digest;
}

export function layerIndexPath(layout: StoreLayout, diffId: string): string {
  return join(layout.layersDir, `${checkDigest(diffId, 'Layer diff id')}.index`);
}

export function layerImportMarkerPath(layout: StoreLayout, diffId: string): string {
  return join(layout.layersDir, `${checkDigest(diffId, 'Layer diff id')}.importing`);
}

export function imageDir(layout: StoreLayout, manifestDigest: string): string {
  return join(layout.imagesDir, checkDigest(manifestDigest, 'Manifest digest'));
}

export function treeIndexPath(layout: StoreLayout, manifestDigest: string): string {
  return join(imageDir(layout, manifestDigest), 'tree.index');
}

const prepared = new Set<string>();

/** Create the store's directories (once per process per root). */
export async function prepareStore(layout: StoreLayout): Promise<void> {
  if (prepared.has(layout.bootcDir)) return;
  // Explicit modes per level: a recursive mkdir would give its mode to every parent too,
  // and <root>/bootc must stay traversable for the deployments below it.
  await mkdir(layout.bootcDir, { recursive: true, mode: 0o755 });
  await mkdir(layout.objectsDir, { recursive: true, mode: 0o755 });
  await mkdir(layout.tmpDir, { recursive: true, mode: 0o700 });
  await mkdir(layout.layersDir, { recursive: true, mode: 0o755 });
  await mkdir(layout.imagesDir, { recursive: true, mode: 0o755 });
  await Promise.all(FANOUT_DIRS.map((d) => mkdir(join(layout.objectsDir, d), { recursive: true, mode: 0o755 })));
  prepared.add(layout.bootcDir);
}
