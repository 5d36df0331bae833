/**
 * Facts about a pulled image read straight from its layers, before anything is imported:
 * the install configuration decides the root filesystem type (which has to exist before
 * the image can be imported into it), and an image without a kernel must be refused before
 * a disk is wiped.
 *
 * Layers are applied in order with OCI whiteouts (`.wh.<name>` removes a path and what is
 * below it, an opaque marker hides what lower layers had in its directory), for the paths a
 * caller selects only. An image already imported is read from its tree instead
 * (readImageFilesOfTree).
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { withContext } from '../core/errors.js';
import { BlobCache, type BlobTap } from '../oci/blob-cache.js';
import { decompressLayer, openLayerUnchecked } from '../oci/layer.js';
import { parsePaxRecords, parseTarHeader } from '../oci/tar-index.js';
import type { PulledImage, PulledLayer } from '../oci/pull.js';
import { formatReference } from '../oci/reference.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../store/layer-entries.js';
import { normaliseEntryPath } from '../store/entry-path.js';
import type { TreeIndex } from '../store/index-format.js';
import { objectPath, storeLayout } from '../store/layout.js';
import { damagedLayerTar } from '../store/layer-tar.js';

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

const BLOCK = 512;
const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * The layer's entries from its headers alone: file data is skipped without being looked at
 * except for the few files whose text is wanted. Measured on fixture:v2: a tar parser that
 * streams every file's data through an entry stream took most of this pre-pass.
 */
async function scanLayer(stream: AsyncIterable<Buffer>, selection: ImageFileSelection, layer: string): Promise<LayerChanges> {
  const changes: LayerChanges = { removed: [], opaque: [], written: new Map() };
  const header = Buffer.alloc(BLOCK);
  let headerFill = 0;
  let skip = 0;
  // Data being read: a PAX or GNU long-name record, or the text of a selected file.
  let reading: { size: number; parts: Buffer[]; got: number; done: (data: Buffer) => void } | null = null;
  // What a PAX or GNU long-name record says about the entry after it.
  const next: { pax: Map<string, string> | null; longName: string | null } = { pax: null, longName: null };

  const entry = (rawName: string, type: string, size: number): void => {
    const path = normaliseEntryPath(rawName);
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '' : path.slice(0, slash);
    const name = path.slice(slash + 1);
    // Directories carry no data whatever their size field says (as tar-stream reads them).
    const dataBytes = type === '5' ? 0 : size;
    let take = false;
    if (name === OPAQUE_MARKER) changes.opaque.push(parent);
    else if (name.startsWith(WHITEOUT_PREFIX)) changes.removed.push(parent === '' ? name.slice(WHITEOUT_PREFIX.length) : `${parent}/${name.slice(WHITEOUT_PREFIX.length)}`);
    else if (selection.select(path)) {
      take = (type === '0' || type === '\0' || type === '7') && size <= MAX_TEXT_BYTES && selection.readText(path);
      if (!take) changes.written.set(path, null);
    }
    if (take) read(dataBytes, (data) => changes.written.set(path, data.toString('utf8')));
    else skip = dataBytes + padding(dataBytes);
  };
  const read = (size: number, done: (data: Buffer) => void): void => {
    if (size === 0) done(Buffer.alloc(0));
    else reading = { size, parts: [], got: 0, done };
  };

  for await (const chunk of stream) {
    let pos = 0;
    while (pos < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - pos);
        skip -= n;
        pos += n;
        continue;
      }
      if (reading !== null) {
        const r: { size: number; parts: Buffer[]; got: number; done: (data: Buffer) => void } = reading;
        const n = Math.min(r.size - r.got, chunk.length - pos);
        r.parts.push(Buffer.from(chunk.subarray(pos, pos + n)));
        r.got += n;
        pos += n;
        if (r.got === r.size) {
          reading = null;
          skip = padding(r.size);
          r.done(Buffer.concat(r.parts));
        }
        continue;
      }
      const n = Math.min(BLOCK - headerFill, chunk.length - pos);
      chunk.copy(header, headerFill, pos, pos + n);
      headerFill += n;
      pos += n;
      if (headerFill < BLOCK) continue;
      headerFill = 0;
      let h: ReturnType<typeof parseTarHeader>;
      try {
        h = parseTarHeader(header);
      } catch (err) {
        throw damagedLayerTar(layer, (err as Error).message);
      }
      if (h === null) continue; // the end-of-archive blocks
      if (h.type === 'x') {
        read(h.size, (data) => (next.pax = parsePaxRecords(data)));
      } else if (h.type === 'L') {
        read(h.size, (data) => (next.longName = data.toString('utf8').replace(/\0+$/, '')));
      } else if (h.type === 'g' || h.type === 'K') {
        skip = h.size + padding(h.size);
      } else {
        const name = next.pax?.get('path') ?? next.longName ?? h.name;
        const size = next.pax?.has('size') ? Number(next.pax.get('size')) : h.size;
        next.pax = null;
        next.longName = null;
        entry(name, h.type, size);
      }
    }
  }
  if (reading !== null || skip > 0 || headerFill > 0) {
    throw damagedLayerTar(layer, 'it ends inside an entry');
  }
  return changes;
}

const layerName = (layer: PulledLayer): string => `layer ${layer.descriptor.digest}`;

/**
 * Scans layers while the puller downloads them (PullOptions.layerTap), so looking at the
 * image's files costs no second read and decompression of what was just downloaded; it
 * overlaps the download instead of following it. Layers the pull found in the cache are
 * scanned from there by readImageFiles.
 */
export class LayerScanner {
  private readonly scanned = new Map<number, LayerChanges>();

  constructor(
    private readonly selection: ImageFileSelection,
    private readonly imageName: string,
  ) {}

  /** A tap for one download attempt of layer `index`. */
  readonly tap = (layer: PulledLayer, index: number): BlobTap => {
    const input = new PassThrough({ highWaterMark: 1 << 20 });
    const output = decompressLayer(input, layer.descriptor, null, this.imageName);
    const scanning = scanLayer(output, this.selection, layerName(layer));
    let failed = false;
    // A failure is reported by finish(), after the blob's own digest check.
    scanning.catch(() => {
      failed = true;
    });
    return {
      write: async (chunk) => {
        if (failed) return;
        if (!input.write(chunk)) await Promise.race([once(input, 'drain'), scanning.catch(() => undefined)]);
      },
      finish: async () => {
        input.end();
        this.scanned.set(index, await scanning);
      },
      abort: () => {
        output.destroy();
        input.destroy();
      },
    };
  };

  /** What the download of layer `index` showed, when it was downloaded. */
  changesOf(index: number): LayerChanges | undefined {
    return this.scanned.get(index);
  }
}

/** The selected paths of the merged image (`scanner`: what was scanned during the pull, with the same selection). */
export async function readImageFiles(pulled: PulledImage, selection: ImageFileSelection, scanner?: LayerScanner): Promise<ImageFiles> {
  return withContext(`Reading image ${formatReference(pulled.reference)}`, async () => {
    const cache = await BlobCache.open(pulled.cacheDir);
    // Layers are scanned two at a time (decompression is the cost, and it uses the other
    // core), then applied in order. All at once, a 64-layer image held 64 decompressors and
    // their read buffers: 420 MB resident.
    const scanned: LayerChanges[] = new Array(pulled.layers.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < pulled.layers.length) {
        const i = next++;
        const layer = pulled.layers[i]!;
        scanned[i] = scanner?.changesOf(i) ?? (await scanLayer(openLayerUnchecked(cache, layer, formatReference(pulled.reference)), selection, layerName(layer)));
      }
    };
    await Promise.all([worker(), worker()]);
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

/**
 * The selected paths of an image already imported into the store under `root`, from its
 * tree index and objects: no layer is read again.
 */
export async function readImageFilesOfTree(root: string, tree: TreeIndex, selection: ImageFileSelection): Promise<ImageFiles> {
  const files: ImageFiles = new Map();
  const layout = storeLayout(root);
  for (const e of tree.entries) {
    if (e.kind === 'dir' || !selection.select(e.path)) continue;
    const text = e.kind === 'file' && e.size <= MAX_TEXT_BYTES && selection.readText(e.path) ? await readFile(objectPath(layout, e.object), 'utf8') : null;
    files.set(e.path, text);
  }
  return files;
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
