/**
 * Writes file objects into the store. Only ever creates files under objects/ with names
 * derived from content (`.tmp-*` temp names, then the object id): nothing a layer
 * says about paths or symlinks can steer a write elsewhere. That is what makes import safe
 * structurally; paths are only data in the index.
 *
 * Each object: create a temp file, write the content (hashed on the way in), chown and
 * chmod it (in that order: chown clears setuid bits), pin its mtime to 0 (as ostree does,
 * so checkouts and disk images are reproducible), close, rename to objects/ab/cdef….
 * If the object already exists the write is skipped (file-level dedup); within one import a
 * reserved id is never written twice.
 *
 * Speed: no per-object fsync. The importer calls `syncStoreFilesystem` (one syncfs) before
 * it writes the layer index, so an index only ever names durable objects. Small files are
 * buffered, then written by synchronous calls (writeObjectFileSync) once the fan-out
 * listing says they are new; big files stream straight to disk. Objects with xattrs stay
 * under their temp name until one setfattr process has labelled all of them (xattrs.ts),
 * then are renamed.
 */
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, openSync, renameSync, writeSync } from 'node:fs';
import { open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/exec.js';
import { BugError } from '../core/errors.js';
import { TEMP_MARK } from '../core/durable-file.js';
import { startObjectHash, type ObjectMetadata } from './object-id.js';
import { objectPath, type StoreLayout } from './layout.js';
import { applyXattrs } from './xattrs.js';

export interface ObjectWriterOptions {
  /**
   * Trust that an object file which exists is complete. False after an unclean shutdown
   * interrupted an import (its objects may not have reached the disk): then objects are
   * rewritten even when present.
   */
  trustExisting: boolean;
  /** Small objects queued at once (each waits for its fan-out listing, then is written synchronously). */
  concurrency?: number;
  /** Bytes of small-file content held in memory waiting to be written. */
  maxBufferedBytes?: number;
}

export interface ObjectWriterStats {
  objectsWritten: number;
  bytesWritten: number;
}

interface Deferred {
  tmp: string;
  final: string;
  meta: ObjectMetadata;
}

const FIXED_MTIME = 0;
const myUid = process.getuid?.() ?? -1;
const myGid = process.getgid?.() ?? -1;
const umask = readUmask();

function readUmask(): number {
  // process.umask() without an argument is the only way to read it; it does not change it.
  return process.umask();
}

let tmpSeq = 0;

export class ObjectWriter {
  readonly stats: ObjectWriterStats = { objectsWritten: 0, bytesWritten: 0 };
  /** Object ids present in the store or being written by this writer. */
  private readonly reserved = new Set<string>();
  private readonly deferred: Deferred[] = [];
  private readonly tmpFiles = new Set<string>();
  private readonly listings = new Map<string, Promise<Set<string>>>();
  private inFlight = 0;
  private bufferedBytes = 0;
  private failure: unknown = null;
  private waiters: Array<() => void> = [];
  private readonly concurrency: number;
  private readonly maxBufferedBytes: number;

  constructor(
    private readonly layout: StoreLayout,
    private readonly options: ObjectWriterOptions,
  ) {
    this.concurrency = options.concurrency ?? 16;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 64 * 1024 * 1024;
  }

  /**
   * A temp name: beside its object when the id is already known, so creates spread over the
   * 256 fan-out directories (and their ext4 inode groups, where inode allocation was the
   * biggest kernel cost in a profile) and the rename stays inside one directory; else in
   * objects/tmp.
   */
  private tempPath(id?: string): string {
    // The one temp-name pattern (core/durable-file.ts); never an object id (those are hex).
    const name = `${TEMP_MARK}${process.pid}-${++tmpSeq}`;
    return id ? join(this.layout.objectsDir, id.slice(0, 2), name) : join(this.layout.tmpDir, name);
  }

  /**
   * Store a file whose content is in memory. Returns its id at once; the write runs in the
   * background. Call `whenReady()` before feeding more, and `finish()` at the end.
   */
  putBuffered(meta: ObjectMetadata, chunks: readonly Buffer[]): string {
    const hash = startObjectHash(meta);
    for (const c of chunks) hash.update(c);
    const id = hash.digest('hex');
    if (this.reserved.has(id)) return id;
    this.reserved.add(id);
    this.inFlight++;
    this.bufferedBytes += meta.size;
    this.writeBuffered(id, meta, chunks)
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.inFlight--;
        this.bufferedBytes -= meta.size;
        this.wake();
      });
    return id;
  }

  /** Resolves when another buffered file may be queued; rejects if a write failed. */
  async whenReady(): Promise<void> {
    while (this.inFlight >= this.concurrency || this.bufferedBytes >= this.maxBufferedBytes) {
      if (this.failure) break;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure) throw this.failure;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }

  /**
   * Whether the object is already stored. One readdir per fan-out directory (on first use)
   * instead of an lstat per object: a directory listing returns hundreds of names per
   * syscall, and a big layer touches every fan-out directory anyway.
   */
  private async exists(id: string): Promise<boolean> {
    if (!this.options.trustExisting) return false;
    const fanout = id.slice(0, 2);
    let names = this.listings.get(fanout);
    if (!names) {
      names = readdir(join(this.layout.objectsDir, fanout)).then((list) => new Set(list));
      this.listings.set(fanout, names);
    }
    return (await names).has(id.slice(2));
  }

  private async writeBuffered(id: string, meta: ObjectMetadata, chunks: readonly Buffer[]): Promise<void> {
    if (await this.exists(id)) return;
    const tmp = this.tempPath(id);
    this.tmpFiles.add(tmp);
    writeObjectFileSync(tmp, meta, chunks);
    this.place(tmp, objectPath(this.layout, id), meta);
  }

  /** Store a file streamed from the tar (too big to buffer). Resolves to its id. */
  async putStreamed(meta: ObjectMetadata, content: AsyncIterable<Buffer>): Promise<string> {
    const tmp = this.tempPath();
    this.tmpFiles.add(tmp);
    const hash = startObjectHash(meta);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, meta.mode & 0o777);
    let written = 0;
    try {
      for await (const chunk of content) {
        hash.update(chunk);
        await fh.write(chunk);
        written += chunk.length;
      }
      if (written !== meta.size) throw new BugError(`tar entry gave ${written} bytes, header said ${meta.size}`);
      await this.setMetadata(fh, meta);
    } finally {
      await fh.close();
    }
    const id = hash.digest('hex');
    const final = objectPath(this.layout, id);
    if (this.reserved.has(id) || (await this.exists(id))) {
      await this.drop(tmp);
      return id;
    }
    this.reserved.add(id);
    this.place(tmp, final, meta);
    return id;
  }

  private async setMetadata(fh: FileHandle, meta: ObjectMetadata): Promise<void> {
    if (meta.uid !== myUid || meta.gid !== myGid) await fh.chown(meta.uid, meta.gid);
    const created = meta.mode & 0o777 & ~umask;
    if (created !== meta.mode) await fh.chmod(meta.mode);
    await fh.utimes(FIXED_MTIME, FIXED_MTIME);
  }

  private place(tmp: string, final: string, meta: ObjectMetadata): void {
    if (meta.xattrs.length > 0) {
      this.deferred.push({ tmp, final, meta });
      return;
    }
    renameSync(tmp, final);
    this.tmpFiles.delete(tmp);
    this.stats.objectsWritten++;
    this.stats.bytesWritten += meta.size;
  }

  private async drop(tmp: string): Promise<void> {
    await rm(tmp, { force: true });
    this.tmpFiles.delete(tmp);
  }

  /** Wait for every write, label objects that carry xattrs, and move them into place. */
  async finish(): Promise<ObjectWriterStats> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failure) throw this.failure;
    if (this.deferred.length > 0) {
      await applyXattrs(
        this.deferred.map((d) => ({ path: d.tmp, xattrs: d.meta.xattrs })),
        `${this.tempPath()}.xattrs`,
        'Setting extended attributes on new store objects',
      );
      for (const d of this.deferred) {
        await rename(d.tmp, d.final);
        this.tmpFiles.delete(d.tmp);
        this.stats.objectsWritten++;
        this.stats.bytesWritten += d.meta.size;
      }
      this.deferred.length = 0;
    }
    return this.stats;
  }

  /** After a failure: wait for writes in flight, then remove every temp file left. */
  async abandon(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    await Promise.all([...this.tmpFiles].map((t) => rm(t, { force: true })));
    this.tmpFiles.clear();
  }
}

/**
 * Create `tmp` with the content and metadata of a small object, by synchronous system calls.
 * Measured on 20k 3 KB files: 0.9–1.5 s against 2.2–2.5 s through the thread pool (and 40%
 * of the CPU), which on two cores matters more than the event loop pausing for each file:
 * every asynchronous call costs a hand-off to a pool thread and back.
 */
function writeObjectFileSync(tmp: string, meta: ObjectMetadata, chunks: readonly Buffer[]): void {
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, meta.mode & 0o777);
  try {
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done);
    }
    if (meta.uid !== myUid || meta.gid !== myGid) fchownSync(fd, meta.uid, meta.gid);
    if ((meta.mode & 0o777 & ~umask) !== meta.mode) fchmodSync(fd, meta.mode);
    futimesSync(fd, FIXED_MTIME, FIXED_MTIME);
  } finally {
    closeSync(fd);
  }
}

/** One syncfs for the filesystem holding the store, instead of an fsync per object. */
export async function syncStoreFilesystem(layout: StoreLayout): Promise<void> {
  await run({ description: 'Flushing the object store to disk', argv: ['sync', '-f', layout.objectsDir] });
}

