/**
 * Import one layer (an uncompressed tar stream, already verified against its diff id by
 * the puller) into the object store, and record the result as `layers/<diff-id>.index`.
 *
 * 1. If the layer index exists, the layer is already imported: report it as cached.
 * 2. Leave an `.importing` marker (process id + boot id) so a crash can be recognised.
 * 3. Stream the tar: every header goes through LayerIndexBuilder (paths, whiteouts,
 *    hardlinks, symlinked parents); regular files become objects (object-writer.ts).
 * 4. Wait for the writes, set xattrs (one setfattr), one syncfs, then write the index
 *    atomically and remove the marker. On failure, temp files are removed and no index is
 *    written: a half-imported layer is never mistaken for an imported one.
 *
 * After an unclean shutdown (a marker from another boot), objects written since the last
 * syncfs may be empty on disk, so imports stop trusting that an existing object file is
 * complete and rewrite what they need, until `gc` clears those markers.
 */
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { Header } from 'tar-stream';
import { InterruptedError, withContext } from '../core/errors.js';
import { warn, debug } from '../core/log.js';
import { decodeTarName, displayPath } from './entry-path.js';
import {
  decodeLayerIndex,
  encodeIndexChunks,
  INDEX_FORMAT,
  INDEX_VERSION,
  type LayerImportStats,
  type LayerIndex,
  type LayerIndexHeader,
} from './index-format.js';
import { LayerIndexBuilder } from './layer-entries.js';
import { createLayerTarExtract, damagedLayerTar, ownerFromHeader, xattrsFromPax, type PaxRecords } from './layer-tar.js';
import { layerImportMarkerPath, layerIndexPath, prepareStore, storeLayout, type StoreLayout } from './layout.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { ObjectWriter, syncStoreFilesystem } from './object-writer.js';

export interface ImportLayerOptions {
  signal?: AbortSignal;
  /** Called every few hundred entries and at the end. */
  onProgress?: (progress: { entries: number; bytes: number }) => void;
  /** Parallel object writes (default 16). */
  concurrency?: number;
}

export interface LayerImportResult {
  diffId: string;
  /** True when the layer was already in the store and the stream was not read. */
  cached: boolean;
  stats: LayerImportStats;
}

/** Files up to this size are buffered and written in the background; bigger ones stream. */
const BUFFERED_FILE_LIMIT = 4 * 1024 * 1024;
const PROGRESS_EVERY = 500;

export async function isLayerImported(root: string, diffId: string): Promise<boolean> {
  return fileExists(layerIndexPath(storeLayout(root), diffId));
}

export async function loadLayerIndex(root: string, diffId: string): Promise<LayerIndex> {
  const path = layerIndexPath(storeLayout(root), diffId);
  return decodeLayerIndex(await readFile(path, 'utf8'), path);
}

/** Import a layer tar stream into the store under `root`. */
export async function importLayer(
  root: string,
  diffId: string,
  tar: Readable | AsyncIterable<Uint8Array>,
  options: ImportLayerOptions = {},
): Promise<LayerImportResult> {
  const [result] = await importLayers(root, [{ diffId, open: () => tar }], options);
  if (result!.cached) (tar as Partial<Readable>).destroy?.();
  return result!;
}

export interface LayerToImport {
  diffId: string;
  /** The layer's blob digest, as the pull showed it: errors name the layer by it (default: the diff-id). */
  digest?: string;
  /** The layer's uncompressed tar; opened only when the layer is not in the store yet. */
  open: () => Readable | AsyncIterable<Uint8Array>;
}

export interface ImportLayersOptions extends ImportLayerOptions {
  /** Called as each layer starts (index into `layers`). */
  onLayer?: (index: number) => void;
}

/** Layers streamed at once: a layer's import waits on the kernel (file creation) as much as on the CPU, so two overlap well on two cores. */
const LAYER_CONCURRENCY = 2;

/**
 * Import layers, two at a time. A layer's syncfs runs in the background while other layers
 * stream, and its index is written once that sync is done: measured on fixture:v2 onto a
 * loop device, waiting for each sync before the next layer left the CPU idle for as long
 * as the sync took (the kernel writes the objects out only when asked). Whatever fails,
 * no index names an object that a completed syncfs did not cover.
 */
export async function importLayers(root: string, layers: readonly LayerToImport[], options: ImportLayersOptions = {}): Promise<LayerImportResult[]> {
  const layout = storeLayout(root);
  const results: LayerImportResult[] = new Array(layers.length);
  const indexing: Promise<void>[] = [];
  let next = 0;
  let failure: { error: unknown } | null = null;
  const importOne = async (i: number): Promise<void> => {
    const layer = layers[i]!;
    options.onLayer?.(i);
    const context = `Importing layer ${layer.digest ?? layer.diffId}`;
    const streamed = await withContext(context, () => streamLayerObjects(layout, layer, options));
    results[i] = streamed.result;
    if (streamed.cached) return;
    const indexed = syncStoreFilesystem(layout).then(
      () => withContext(context, () => streamed.writeIndex()),
      async (err: unknown) => {
        await streamed.abandon();
        throw err;
      },
    );
    // Seen by the allSettled below; without this a failure before it counts as unhandled.
    indexed.catch(() => undefined);
    indexing.push(indexed);
  };
  const worker = async (): Promise<void> => {
    while (failure === null && next < layers.length) {
      if (options.signal?.aborted) {
        failure ??= { error: new InterruptedError(String(options.signal.reason ?? 'SIGINT')) };
        return;
      }
      try {
        await importOne(next++);
      } catch (err) {
        failure ??= { error: err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(LAYER_CONCURRENCY, layers.length) }, worker));
  // Every started layer ends with its index written or its marker removed, whatever failed.
  const settled = await Promise.allSettled(indexing);
  if (failure !== null) throw (failure as { error: unknown }).error;
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return results;
}

interface StreamedLayer {
  cached: boolean;
  result: LayerImportResult;
  /** After a syncfs that covers the objects: write the index, remove the marker. */
  writeIndex: () => Promise<void>;
  /** The sync failed: remove the marker (objects stay, unreferenced, for gc). */
  abandon: () => Promise<void>;
}

/** Steps 1-4 up to the sync: the layer's objects written (not yet durable), its index ready. */
async function streamLayerObjects(layout: StoreLayout, layer: LayerToImport, options: ImportLayerOptions): Promise<StreamedLayer> {
  const { diffId } = layer;
  const indexPath = layerIndexPath(layout, diffId);
  if (await fileExists(indexPath)) {
    const index = decodeLayerIndex(await readFile(indexPath, 'utf8'), indexPath);
    const nothing = async (): Promise<void> => undefined;
    return { cached: true, result: { diffId, cached: true, stats: index.header.stats }, writeIndex: nothing, abandon: nothing };
  }
  await prepareStore(layout);
  const bootId = await currentBootId();
  const trustExisting = !(await hasMarkerFromAnotherBoot(layout, bootId));
  if (!trustExisting) debug('store: an import was cut short by a crash; rewriting existing objects');
  const marker = layerImportMarkerPath(layout, diffId);
  await writeFile(marker, JSON.stringify({ pid: process.pid, bootId, startedAt: new Date().toISOString() }) + '\n');

  const writer = new ObjectWriter(layout, { trustExisting, concurrency: options.concurrency });
  const builder = new LayerIndexBuilder();
  try {
    await streamLayer(layer.open(), builder, writer, options);
    const written = await writer.finish();
    const stats: LayerImportStats = {
      entries: builder.entries.length,
      files: builder.files,
      objectsWritten: written.objectsWritten,
      bytesWritten: written.bytesWritten,
      bytesTotal: builder.bytesTotal,
      skipped: builder.skipped,
    };
    if (builder.skipped > 0) {
      warn(
        `layer ${diffId.slice(0, 19)}…: skipped ${builder.skipped} device node(s), fifo(s), entries under /dev or aufs metadata (the store keeps none; /dev is provided at boot)`,
      );
    }
    const header: LayerIndexHeader = { format: INDEX_FORMAT, version: INDEX_VERSION, kind: 'layer', diffId, stats };
    return {
      cached: false,
      result: { diffId, cached: false, stats },
      writeIndex: async () => {
        try {
          await writeFileAtomic(indexPath, encodeIndexChunks(header, builder.entries), 0o600);
        } finally {
          await rm(marker, { force: true });
        }
      },
      abandon: () => rm(marker, { force: true }),
    };
  } catch (err) {
    await writer.abandon();
    await rm(marker, { force: true });
    throw err;
  }
}

async function streamLayer(
  tar: Readable | AsyncIterable<Uint8Array>,
  builder: LayerIndexBuilder,
  writer: ObjectWriter,
  options: ImportLayerOptions,
): Promise<void> {
  const extract = createLayerTarExtract();
  let entries = 0;
  let bytes = 0;
  // Errors of our own entry handling. Any other plain Error without an errno comes from the
  // tar parser (tar-stream raises those on bad bytes, also through the entry's stream).
  const handlerErrors = new WeakSet<object>();
  extract.on('entry', (header, source, next) => {
    const stream = source as unknown as Readable;
    let streamError: unknown;
    stream.once('error', (err) => (streamError = err));
    entries++;
    bytes += header.size;
    if (options.onProgress && entries % PROGRESS_EVERY === 0) options.onProgress({ entries, bytes });
    handleEntry(header, stream, builder, writer).then(
      () => next(),
      (err: unknown) => {
        stream.resume();
        const error = err instanceof Error ? err : new Error(String(err));
        if (error !== streamError) handlerErrors.add(error);
        next(error);
      },
    );
  });
  try {
    await pipeline(tar, extract, { signal: options.signal });
  } catch (err) {
    // The CLI reports a Ctrl-C as an interruption, not as a failed import.
    if (options.signal?.aborted && (err as Error).name === 'AbortError') {
      throw new InterruptedError(String(options.signal.reason ?? 'SIGINT'));
    }
    if (isTarParserError(err, handlerErrors)) throw damagedLayerTar('the layer', tarParserDetail(err as Error));
    throw err;
  }
  options.onProgress?.({ entries, bytes });
}

/** An error the tar parser raised on the layer's bytes (not ours, not the source's, not the system's). */
function isTarParserError(err: unknown, handlerErrors: WeakSet<object>): boolean {
  // Our own error classes are subclasses of Error; system errors carry an errno code.
  if (!(err instanceof Error) || err.constructor !== Error || handlerErrors.has(err)) return false;
  return (err as NodeJS.ErrnoException).code === undefined;
}

/** tar-stream's words, without its guess that the layer "needs to be gunzipped". */
function tarParserDetail(err: Error): string {
  if (err.message.startsWith('Invalid tar header')) return 'a header is damaged (bad checksum or unknown format)';
  if (err.message === 'Unexpected end of data') return 'it ends inside an entry';
  return err.message;
}

async function handleEntry(
  header: Header,
  stream: Readable,
  builder: LayerIndexBuilder,
  writer: ObjectWriter,
): Promise<void> {
  const pax = header.pax as PaxRecords | null | undefined;
  const name = decodeTarName(header.name, 'entry');
  const { uid, gid } = ownerFromHeader(header);
  const action = builder.classify({
    name,
    type: header.type,
    linkname: header.linkname ? decodeTarName(header.linkname, `link target of ${JSON.stringify(name)}:`) : null,
    mode: header.mode,
    uid,
    gid,
    size: header.size,
    xattrs: xattrsFromPax(pax),
  });
  if (action.action !== 'store-file') {
    await drain(stream);
    return;
  }
  const { path, meta } = action;
  let id: string;
  if (meta.size <= BUFFERED_FILE_LIMIT) {
    const chunks = await collect(stream, meta.size, path);
    await writer.whenReady();
    id = writer.putBuffered(meta, chunks);
  } else {
    id = await writer.putStreamed(meta, stream as AsyncIterable<Buffer>);
  }
  builder.addFile(path, id, meta);
}

function collect(stream: Readable, size: number, path: string): Promise<Buffer[]> {
  if (size === 0) return drain(stream).then(() => []);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    stream.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
    });
    stream.on('end', () =>
      got === size
        ? resolve(chunks)
        : reject(
            damagedLayerTar('the layer', `it ends inside ${displayPath(path)}`),
          ),
    );
    stream.on('error', reject);
  });
}

function drain(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
    stream.resume();
  });
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function currentBootId(): Promise<string> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return 'unknown';
  }
}

/** Markers left by an import that a reboot (crash, power loss) cut short. */
export async function staleImportMarkers(layout: StoreLayout, bootId?: string): Promise<string[]> {
  const boot = bootId ?? (await currentBootId());
  let names: string[];
  try {
    names = await readdir(layout.layersDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const stale: string[] = [];
  for (const n of names.filter((n) => n.endsWith('.importing'))) {
    const path = join(layout.layersDir, n);
    try {
      const m = JSON.parse(await readFile(path, 'utf8')) as { bootId?: string };
      if (m.bootId !== boot) stale.push(path);
    } catch {
      stale.push(path);
    }
  }
  return stale;
}

async function hasMarkerFromAnotherBoot(layout: StoreLayout, bootId: string): Promise<boolean> {
  return (await staleImportMarkers(layout, bootId)).length > 0;
}
