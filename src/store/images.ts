/**
 * The image records of the store: `images/<manifest-digest>/` holds the tree index
 * (tree.ts) and, written here, the image's manifest.json and config.json exactly as
 * pulled, so status and upgrade checks never have to go back to the registry. GC removes
 * the whole directory of an image that is no longer kept.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';
import { imageDir, storeLayout, treeIndexPath } from './layout.js';
import { writeFileAtomic } from '../core/durable-file.js';

export interface ImageMetadata {
  /** The manifest bytes as pulled (their sha256 is the manifest digest). */
  manifest: Uint8Array | string;
  /** The config bytes as pulled. */
  config: Uint8Array | string;
}

export async function saveImageMetadata(root: string, manifestDigest: string, meta: ImageMetadata): Promise<void> {
  const dir = imageDir(storeLayout(root), manifestDigest);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFileAtomic(join(dir, 'manifest.json'), meta.manifest, 0o644);
  await writeFileAtomic(join(dir, 'config.json'), meta.config, 0o644);
}

export async function loadImageMetadata(root: string, manifestDigest: string): Promise<{ manifest: Buffer; config: Buffer }> {
  const dir = imageDir(storeLayout(root), manifestDigest);
  try {
    return {
      manifest: await readFile(join(dir, 'manifest.json')),
      config: await readFile(join(dir, 'config.json')),
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(`Image ${manifestDigest} has no manifest or config in the store under ${root}`, {
        hint: 'pull the image again',
      });
    }
    throw err;
  }
}

/** Manifest digests of the images whose tree is in the store (complete imports). */
export async function listStoredImages(root: string): Promise<string[]> {
  const layout = storeLayout(root);
  let names: string[];
  try {
    names = await readdir(layout.imagesDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: string[] = [];
  for (const n of names.sort()) {
    try {
      await stat(treeIndexPath(layout, n));
      out.push(n);
    } catch {
      // Not a digest, or an image directory without a tree: a pull that did not finish.
    }
  }
  return out;
}
