/**
 * Verify the object store: every object's name must be the id of what is on disk (its
 * content, mode, owner, group and xattrs, hashed as object-id.ts defines), and every object
 * an index references must exist. Reports problems; repairs nothing (a corrupt object is
 * fixed by removing it and its layer index, then pulling again).
 */
import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { withContext } from '../core/errors.js';
import { decimalBytes } from '../core/progress.js';
import { storeLayout } from './layout.js';
import { startObjectHash } from './object-id.js';
import { listIndexes, listObjects, objectsOfImage, objectsOfLayer } from './store-contents.js';
import { readXattrsBelow } from './xattrs.js';

export interface CorruptObject {
  object: string;
  path: string;
  /** The id its current content and metadata hash to, when it could be read. */
  actual?: string;
  reason: string;
}

export interface MissingObject {
  object: string;
  /** The index that references it: `layer <diff-id>` or `image <manifest-digest>`. */
  referencedBy: string;
}

export interface FsckResult {
  objectsChecked: number;
  bytesChecked: number;
  corrupt: CorruptObject[];
  missing: MissingObject[];
  /** Files in the object directories whose names are not object ids. */
  strays: string[];
  ok: boolean;
}

export interface FsckOptions {
  concurrency?: number;
}

export async function fsckStore(root: string, options: FsckOptions = {}): Promise<FsckResult> {
  return withContext(`Checking the object store under ${root}`, async () => {
    const layout = storeLayout(root);
    const { objects, strays } = await listObjects(layout);
    const xattrs = objects.length > 0 ? await readXattrsBelow(layout.objectsDir, 'Reading xattrs of store objects') : new Map();
    const corrupt: CorruptObject[] = [];
    let bytesChecked = 0;

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < objects.length) {
        const o = objects[next++] as { id: string; path: string };
        const st = await lstat(o.path);
        if (!st.isFile()) {
          corrupt.push({ object: o.id, path: o.path, reason: 'not a regular file' });
          continue;
        }
        const hash = startObjectHash({
          mode: st.mode & 0o7777,
          uid: st.uid,
          gid: st.gid,
          size: st.size,
          xattrs: xattrs.get(o.path) ?? [],
        });
        try {
          for await (const chunk of createReadStream(o.path, { highWaterMark: 256 * 1024 })) hash.update(chunk as Buffer);
        } catch (err) {
          corrupt.push({ object: o.id, path: o.path, reason: `unreadable: ${(err as Error).message}` });
          continue;
        }
        bytesChecked += st.size;
        const actual = hash.digest('hex');
        if (actual !== o.id) {
          corrupt.push({ object: o.id, path: o.path, actual, reason: 'content or metadata does not match the object id' });
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));

    const present = new Set(objects.map((o) => o.id));
    const missing: MissingObject[] = [];
    const { layers, images } = await listIndexes(layout);
    for (const diffId of layers) {
      const refs = new Set<string>();
      await objectsOfLayer(layout, diffId, refs);
      for (const id of refs) if (!present.has(id)) missing.push({ object: id, referencedBy: `layer ${diffId}` });
    }
    for (const digest of images) {
      const refs = new Set<string>();
      await objectsOfImage(layout, digest, refs);
      for (const id of refs) if (!present.has(id)) missing.push({ object: id, referencedBy: `image ${digest}` });
    }
    corrupt.sort((a, b) => a.object.localeCompare(b.object));
    return {
      objectsChecked: objects.length,
      bytesChecked,
      corrupt,
      missing,
      strays,
      ok: corrupt.length === 0 && missing.length === 0,
    };
  });
}

/** What `bootc internals fsck` prints: a summary line, then one line per problem. */
export function formatFsckReport(r: FsckResult): string {
  const lines = [
    `Checked ${r.objectsChecked} objects (${decimalBytes(r.bytesChecked)}): ` +
      (r.ok ? 'no problems found' : `${r.corrupt.length} corrupt, ${r.missing.length} missing`),
  ];
  for (const c of r.corrupt) lines.push(`corrupt object ${c.object}: ${c.reason}${c.actual ? ` (hashes to ${c.actual})` : ''}`);
  for (const m of r.missing) lines.push(`missing object ${m.object}, referenced by ${m.referencedBy}`);
  for (const s of r.strays) lines.push(`stray file ${s} (not an object)`);
  return lines.join('\n') + '\n';
}

