/**
 * The blob cache: a directory laid out as an OCI image layout (`oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`), so any OCI tool can read what we pulled (`skopeo inspect oci:DIR:REF`).
 *
 * A blob is only ever visible under its final name once its size and sha256 are verified:
 * it streams into `<hex>.partial` next to its final name, is checked, fsynced and renamed
 * (core/durable-file.ts; the partial is not a temporary name: a later fetch resumes it).
 * An interrupted download leaves the partial behind and the next fetch resumes it (hashing
 * the bytes already there, then asking the source for the rest). A blob whose bytes do not
 * match its digest or size is an error naming the blob and the image, and its partial is
 * deleted so the next attempt starts clean.
 */
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterruptedError, UserError, invariant } from '../core/errors.js';
import { renameDurably, writeFileAtomic } from '../core/durable-file.js';
import { debug } from '../core/log.js';
import { digestOf, newSha256, sha256Digest, sha256Hex } from './digest.js';
import type { BlobStreamInfo, Descriptor, ImageSource } from './types.js';

export const OCI_LAYOUT_VERSION = '1.0.0';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** Network hiccups worth another attempt (resuming from the partial); everything else is final. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
const FETCH_ATTEMPTS = 4;
const RETRY_BASE_DELAY_MS = 250;
/** Downloaded bytes are written to the partial in batches of this size (4 MiB measured slower: a local archive pull took twice as long). */
const WRITE_BATCH_BYTES = 1 << 20;

function isTransient(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  const cause = (err as { cause?: unknown }).cause;
  return cause !== undefined && cause !== err && isTransient(cause);
}

function isMissing(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}

export interface FetchBlobOptions {
  /** Named in errors: "blob sha256:… of image quay.io/…". */
  imageName: string;
  signal?: AbortSignal;
  /** Bytes of this blob present so far (resumed bytes included), after every chunk. */
  onBytes?: (bytes: number) => void;
  /**
   * A second check that sees every byte of a downloaded blob in order (the puller's diff-id
   * check). A fresh tap is opened per attempt, since an attempt re-reads a resumed partial.
   */
  openTap?: () => BlobTap;
}

export interface BlobTap {
  write(chunk: Buffer): Promise<void>;
  /** All bytes were written; resolves once the tap's own check passed. */
  finish(): Promise<void>;
  abort(): void;
}

export interface FetchBlobResult {
  /** True when the blob was already complete in the cache and nothing was read. */
  cached: boolean;
}

interface OciIndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

/**
 * Downloads running in this process, by cache directory and digest: two BlobCache objects on
 * the same directory (two pulls at once) must not write the same partial.
 */
const inFlight = new Map<string, Promise<FetchBlobResult>>();
/** Serialises read-modify-write of each cache's index.json within this process. */
const indexLocks = new Map<string, Promise<unknown>>();

/** Where a blob cache (an OCI layout) at `dir` keeps the blob `digest`. */
export function blobPathIn(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', sha256Hex(digest));
}

export class BlobCache {

  private constructor(readonly dir: string) {}


  /** Open (creating when needed) a cache directory. */
  static async open(dir: string): Promise<BlobCache> {
    const cache = new BlobCache(resolve(dir));
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    const layoutFile = join(dir, 'oci-layout');
    try {
      await stat(layoutFile);
    } catch (err) {
      if (!isMissing(err)) throw err;
      await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    }
    return cache;
  }

  blobPath(digest: string): string {
    return blobPathIn(this.dir, digest);
  }

  partialPath(digest: string): string {
    return `${this.blobPath(digest)}.partial`;
  }

  /** A complete blob of the descriptor's size is present. Content was verified when it was stored. */
  async hasBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<boolean> {
    try {
      const st = await stat(this.blobPath(descriptor.digest));
      return st.isFile() && st.size === descriptor.size;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /** A small blob's bytes (manifests, configs), or undefined when absent. */
  async readBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<Buffer | undefined> {
    if (!(await this.hasBlob(descriptor))) return undefined;
    return readFile(this.blobPath(descriptor.digest));
  }

  /** Store bytes already in memory (a manifest, a config) after checking their digest. */
  async storeBytes(descriptor: Pick<Descriptor, 'digest' | 'size'>, bytes: Uint8Array, imageName: string): Promise<void> {
    const actual = sha256Digest(bytes);
    if (actual !== descriptor.digest || bytes.byteLength !== descriptor.size) {
      throw this.mismatch(descriptor.digest, imageName, `its content hashes to ${actual} (${bytes.byteLength} bytes, expected ${descriptor.size})`);
    }
    if (await this.hasBlob(descriptor)) return;
    await writeFileAtomic(this.blobPath(descriptor.digest), bytes);
  }

  /**
   * Make sure the blob is in the cache, reading it from `source` if not. Two fetches of the
   * same digest in this process share one download.
   */
  fetchBlob(source: ImageSource, descriptor: Descriptor, options: FetchBlobOptions): Promise<FetchBlobResult> {
    const key = `${this.dir}\0${descriptor.digest}`;
    const running = inFlight.get(key);
    if (running) {
      return running.then(() => {
        options.onBytes?.(descriptor.size);
        return { cached: true };
      });
    }
    const job = this.download(source, descriptor, options).finally(() => inFlight.delete(key));
    inFlight.set(key, job);
    return job;
  }

  private async download(source: ImageSource, descriptor: Descriptor, options: FetchBlobOptions): Promise<FetchBlobResult> {
    sha256Hex(descriptor.digest, `blob ${descriptor.digest} of image ${options.imageName}`);
    if (await this.hasBlob(descriptor)) {
      options.onBytes?.(descriptor.size);
      return { cached: true };
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await this.downloadOnce(source, descriptor, options);
        return { cached: false };
      } catch (err) {
        if (attempt >= FETCH_ATTEMPTS || !isTransient(err) || options.signal?.aborted) throw err;
        const delay = RETRY_BASE_DELAY_MS * 2 ** (attempt - 1);
        debug(`blob ${descriptor.digest}: ${(err as Error).message}; resuming in ${delay} ms (attempt ${attempt + 1})`);
        await sleep(delay, undefined, options.signal ? { signal: options.signal } : undefined).catch(() => {
          throw new InterruptedError();
        });
      }
    }
  }

  /** Hash what an earlier attempt left in the partial, so the download can continue after it. */
  private async resumePoint(
    partial: string,
    descriptor: Descriptor,
    tap: BlobTap | undefined,
  ): Promise<{ offset: number; hash: ReturnType<typeof newSha256> }> {
    const hash = newSha256();
    let size: number;
    try {
      size = (await stat(partial)).size;
    } catch (err) {
      if (isMissing(err)) return { offset: 0, hash };
      throw err;
    }
    if (size > descriptor.size) {
      await unlink(partial);
      return { offset: 0, hash };
    }
    let offset = 0;
    for await (const chunk of createReadStream(partial, { end: size - 1, highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      offset += (chunk as Buffer).length;
      if (tap) await tap.write(chunk as Buffer);
    }
    return { offset, hash };
  }

  private async downloadOnce(source: ImageSource, descriptor: Descriptor, options: FetchBlobOptions): Promise<void> {
    const partial = this.partialPath(descriptor.digest);
    // A holder, because a download that has to start over also starts a fresh tap.
    const taps = { current: options.openTap?.() };
    try {
      await this.streamToPartial(source, descriptor, options, partial, taps);
    } catch (err) {
      taps.current?.abort();
      throw err;
    }
    await renameDurably(partial, this.blobPath(descriptor.digest));
  }

  private async streamToPartial(
    source: ImageSource,
    descriptor: Descriptor,
    options: FetchBlobOptions,
    partial: string,
    taps: { current: BlobTap | undefined },
  ): Promise<void> {
    const { imageName, signal } = options;
    const resumed = await this.resumePoint(partial, descriptor, taps.current);
    const offset = resumed.offset;
    let hash = resumed.hash;
    if (offset > 0) debug(`blob ${descriptor.digest}: resuming at byte ${offset} of ${descriptor.size}`);
    let received = offset;
    options.onBytes?.(received);

    const handle = await open(partial, 'a', 0o644);
    let complete = false;
    // Socket reads are at most 64 KiB and one write each costs more than hashing them: copy
    // them into one buffer, written when full. Copying (rather than keeping the chunks) lets
    // each chunk die young instead of surviving into the old generation. Two buffers: one
    // fills while the other is being written, so the download does not stop for the disk.
    const batchBytes = Math.min(WRITE_BATCH_BYTES, Math.max(1, descriptor.size - offset));
    let batch: Buffer = Buffer.allocUnsafe(batchBytes);
    let spare: Buffer | undefined;
    let pendingBytes = 0;
    let writing: Promise<void> | undefined;
    const writeAll = async (buffer: Buffer, length: number): Promise<void> => {
      for (let written = 0; written < length; ) {
        written += (await handle.write(buffer, written, length - written)).bytesWritten;
      }
    };
    /** Start writing the filled batch; waits only for the write before it. */
    const startFlush = async (): Promise<void> => {
      if (writing) await writing;
      writing = undefined;
      if (pendingBytes === 0) return;
      const full = batch;
      const length = pendingBytes;
      batch = spare ?? Buffer.allocUnsafe(batchBytes);
      spare = undefined;
      pendingBytes = 0;
      writing = writeAll(full, length).then(() => {
        spare = full;
      });
      // A failure is seen by whoever awaits `writing` next; without this it would count as unhandled.
      writing.catch(() => undefined);
    };
    const flush = async (): Promise<void> => {
      await startFlush();
      if (writing) await writing;
      writing = undefined;
    };
    try {
      if (received < descriptor.size) {
        const stream = await source.getBlob(descriptor, { offset, ...(signal ? { signal } : {}) });
        const startOffset = (stream as BlobStreamInfo).startOffset ?? offset;
        if (startOffset !== offset) {
          // The source could not resume (a registry that ignored Range): the stream starts at
          // byte 0, so the partial and everything derived from it start over too.
          invariant(startOffset === 0, `a blob stream can only restart from 0, not ${startOffset}`);
          debug(`blob ${descriptor.digest}: the source cannot resume at byte ${offset}; starting over`);
          await handle.truncate(0);
          hash = newSha256();
          received = 0;
          options.onBytes?.(0);
          if (taps.current) {
            taps.current.abort();
            taps.current = options.openTap?.();
          }
        }
        try {
          for await (const chunk of stream as AsyncIterable<Buffer | string>) {
            if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
            const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
            received += bytes.length;
            if (received > descriptor.size) {
              throw this.mismatch(descriptor.digest, imageName, `the source sent more than the ${descriptor.size} bytes the manifest declares`);
            }
            hash.update(bytes);
            for (let used = 0; used < bytes.length; ) {
              const copied = bytes.copy(batch, pendingBytes, used);
              pendingBytes += copied;
              used += copied;
              if (pendingBytes === batch.length) await startFlush();
            }
            if (taps.current) await taps.current.write(bytes);
            options.onBytes?.(received);
          }
          await flush();
        } catch (err) {
          // What arrived is a valid prefix of the blob: keep it so the retry resumes after it.
          if (!(err instanceof UserError)) await flush().catch(() => undefined);
          throw err;
        } finally {
          const destroy = (stream as { destroy?: () => void }).destroy;
          if (typeof destroy === 'function') destroy.call(stream);
        }
        if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
      }
      if (received < descriptor.size) {
        throw this.mismatch(descriptor.digest, imageName, `it is truncated: the source ended after ${received} of ${descriptor.size} bytes`);
      }
      const actual = digestOf(hash);
      if (actual !== descriptor.digest) {
        throw this.mismatch(descriptor.digest, imageName, `its content hashes to ${actual}`);
      }
      if (taps.current) await taps.current.finish();
      await handle.sync();
      complete = true;
    } catch (err) {
      await writing?.catch(() => undefined);
      await handle.close();
      // Bytes that failed verification can never become valid: start over next time.
      if (err instanceof UserError) await unlink(partial).catch(() => undefined);
      throw err;
    }
    invariant(complete, 'blob verified');
    await handle.close();
  }

  private mismatch(digest: string, imageName: string, what: string): UserError {
    return new UserError(`blob ${digest} of image ${imageName} does not match its digest: ${what}`, {
      hint: 'the image source is damaged or was changed while reading; nothing was kept, so retry, and re-push or rebuild the image if it persists',
    });
  }

  // -------------------------------------------------------------------------------------
  // index.json: the names under which pulled images are recorded

  async readIndex(): Promise<OciIndexJson> {
    try {
      const parsed = JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8')) as OciIndexJson;
      return { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: parsed.manifests ?? [] };
    } catch (err) {
      if (isMissing(err)) return { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] };
      throw err;
    }
  }

  /** Point `refName` at a manifest (replacing what it named before), as `skopeo copy … oci:DIR:REF` does. */
  async recordImage(refName: string, manifest: Descriptor): Promise<void> {
    const update = async (): Promise<void> => {
      const index = await this.readIndex();
      const others = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== refName);
      const entry: Descriptor = {
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.size,
        ...(manifest.platform ? { platform: manifest.platform } : {}),
        annotations: { ...(manifest.annotations ?? {}), [REF_NAME_ANNOTATION]: refName },
      };
      await writeFileAtomic(join(this.dir, 'index.json'), JSON.stringify({ ...index, manifests: [...others, entry] }));
    };
    const previous = indexLocks.get(this.dir) ?? Promise.resolve();
    const next = previous.then(update, update);
    indexLocks.set(this.dir, next.catch(() => undefined));
    await next;
  }
}
