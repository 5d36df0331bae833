/**
 * Facts about a pulled image read straight from its layers, before anything is imported:
 * the install configuration decides the root filesystem type (which has to exist before
 * the image can be imported into it), and an image without a kernel must be refused before
 * a disk is wiped.
 *
 * Layers are applied in order with OCI whiteouts (`.wh.<name>` removes a path and what is
 * below it, an opaque marker hides what lower layers had in its directory), for the paths a
 * caller selects only.
 */
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { withContext } from '../core/errors.js';
import { BlobCache } from '../oci/blob-cache.js';
import { openLayer } from '../oci/layer.js';
import type { PulledImage } from '../oci/pull.js';
import { formatReference } from '../oci/reference.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../store/layer-entries.js';
import { normaliseEntryPath } from '../store/entry-path.js';

/** Install config fragments are a few hundred bytes; anything bigger is not read. */
const MAX_TEXT_BYTES = 1024 * 1024;

export interface ImageFileSelection {
  /** Paths (no leading slash) whose presence is tracked. */
  select: (path: string) => boolean;
  /** Of those, regular files whose text is read. */
  readText: (path: string) => boolean;
}

/** path -> text (for readText files) or null (present, not read). */
export type ImageFiles = Map<string, string | null>;

interface LayerChanges {
  /** Whited-out paths and directories made opaque, hiding lower layers below them. */
  removed: string[];
  opaque: string[];
  written: ImageFiles;
}

const within = (path: string, dir: string): boolean => path === dir || path.startsWith(dir + '/');

async function scanLayer(stream: Readable, selection: ImageFileSelection): Promise<LayerChanges> {
  const changes: LayerChanges = { removed: [], opaque: [], written: new Map() };
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, entry, next) => {
      const path = normaliseEntryPath(header.name);
      const slash = path.lastIndexOf('/');
      const parent = slash < 0 ? '' : path.slice(0, slash);
      const name = path.slice(slash + 1);
      let take = false;
      if (name === OPAQUE_MARKER) changes.opaque.push(parent);
      else if (name.startsWith(WHITEOUT_PREFIX)) changes.removed.push(parent === '' ? name.slice(WHITEOUT_PREFIX.length) : `${parent}/${name.slice(WHITEOUT_PREFIX.length)}`);
      else if (selection.select(path)) {
        take = header.type === 'file' && (header.size ?? 0) <= MAX_TEXT_BYTES && selection.readText(path);
        if (!take) changes.written.set(path, null);
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: unknown) => {
        if (take) chunks.push(c as Buffer);
      });
      entry.on('end', () => {
        if (take) changes.written.set(path, Buffer.concat(chunks).toString('utf8'));
        next();
      });
      entry.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    stream.on('error', reject);
  });
  stream.pipe(extract);
  await done;
  return changes;
}

/** The selected paths of the merged image. */
export async function readImageFiles(pulled: PulledImage, selection: ImageFileSelection): Promise<ImageFiles> {
  return withContext(`Reading image ${formatReference(pulled.reference)}`, async () => {
    const cache = await BlobCache.open(pulled.cacheDir);
    // Layers are scanned at once (decompression is the cost, and it uses other cores), then
    // applied in order.
    const scanned = await Promise.all(
      pulled.layers.map((layer) => scanLayer(openLayer(cache, layer.descriptor, layer.diffId, formatReference(pulled.reference)), selection)),
    );
    const files: ImageFiles = new Map();
    for (const changes of scanned) {
      for (const path of [...files.keys()]) {
        if (changes.removed.some((r) => within(path, r)) || changes.opaque.some((o) => path.startsWith(o === '' ? '' : o + '/'))) files.delete(path);
      }
      for (const [path, text] of changes.written) files.set(path, text);
    }
    return files;
  });
}

export interface ImageFile {
  /** Path inside the image, without a leading slash. */
  path: string;
  text: string;
}

/** Regular files directly in `dir` with their text, in name order. */
export function filesInDirectory(files: ImageFiles, dir: string): ImageFile[] {
  return [...files.entries()]
    .filter((e): e is [string, string] => e[1] !== null && e[0].startsWith(dir + '/') && !e[0].slice(dir.length + 1).includes('/'))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([path, text]) => ({ path, text }));
}
