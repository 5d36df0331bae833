/**
 * Reading a pulled layer (from the cache, or in place in its local source) as the
 * uncompressed tar it stands for, checked against its diff-id
 * (the config's `rootfs.diff_ids[i]`, the sha256 of the uncompressed tar). The check runs
 * while the consumer reads; a mismatch surfaces as an error at the end of the stream, so a
 * consumer must treat the layer as unusable unless the stream ended cleanly.
 *
 * gzip goes through node:zlib; zstd through the `zstd` program (Node 20 has no zstd);
 * uncompressed layers pass through.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { UserError } from '../core/errors.js';
import { spawnStreaming } from '../core/exec.js';
import type { BlobCache } from './blob-cache.js';
import { digestOf, newSha256 } from './digest.js';
import { layerCompression } from './manifest.js';
import type { BlobLocation, Descriptor } from './types.js';

export class DiffIdMismatchError extends UserError {}

/** Hashes the blob's bytes as they pass and fails at the end unless they are the descriptor's. */
class BlobDigestCheck extends Transform {
  private readonly hash = newSha256();
  private bytes = 0;
  constructor(
    private readonly descriptor: Descriptor,
    private readonly imageName: string,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    const actual = digestOf(this.hash);
    if (actual === this.descriptor.digest && this.bytes === this.descriptor.size) {
      callback();
      return;
    }
    const what = actual === this.descriptor.digest ? `${this.bytes} bytes, the manifest says ${this.descriptor.size}` : `its content hashes to ${actual}`;
    callback(
      new UserError(`blob ${this.descriptor.digest} of image ${this.imageName} does not match its digest: ${what}`, {
        hint: 'the image source is damaged or was changed while reading; nothing was kept, so retry, and re-push or rebuild the image if it persists',
      }),
    );
  }
}

/** What a pull left of a layer: its descriptor, and where it is when not in the cache. */
export interface LayerBlob {
  descriptor: Descriptor;
  inPlace?: BlobLocation;
}

/**
 * The compressed bytes of a pulled layer: from the cache (checked when it was stored), or
 * read in place in its local source with its digest checked as it is read.
 */
export function openLayerBlob(cache: BlobCache, layer: LayerBlob, imageName: string): Readable {
  if (layer.inPlace === undefined) return createReadStream(cache.blobPath(layer.descriptor.digest), { highWaterMark: 1 << 20 });
  const { path, start, end } = layer.inPlace;
  const read = createReadStream(path, { start, end, highWaterMark: 1 << 20 });
  const check = new BlobDigestCheck(layer.descriptor, imageName);
  read.on('error', (err) => check.destroy(err));
  return read.pipe(check);
}

/** Hashes what passes through and fails at the end if it is not `diffId`. */
class DiffIdCheck extends Transform {
  private readonly hash = newSha256();
  constructor(
    private readonly descriptor: Descriptor,
    private readonly diffId: string,
    private readonly imageName: string,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    const actual = digestOf(this.hash);
    if (actual === this.diffId) {
      callback();
      return;
    }
    callback(
      new DiffIdMismatchError(
        `layer ${this.descriptor.digest} of image ${this.imageName} does not match its diff-id: uncompressed it hashes to ${actual}, the config says ${this.diffId}`,
        { hint: 'the image config and its layers disagree; the image is damaged or was tampered with; rebuild or re-push it' },
      ),
    );
  }
}

function decompressionFailed(descriptor: Descriptor, imageName: string, err: unknown): UserError {
  if (err instanceof UserError) return err;
  return new UserError(
    `layer ${descriptor.digest} of image ${imageName} cannot be decompressed: ${err instanceof Error ? err.message : String(err)}`,
    { hint: 'the layer is damaged or its media type names the wrong compression; rebuild or re-push the image', cause: err },
  );
}

/**
 * Stream the compressed `input` (the layer's blob bytes) as verified uncompressed tar. Used
 * on cached blobs by openLayer, and on bytes as they arrive by the puller.
 */
export function decompressLayer(input: Readable, descriptor: Descriptor, diffId: string | null, imageName: string): Readable {
  const compression = layerCompression(descriptor.mediaType, imageName);
  const check = diffId === null ? new PassThrough({ highWaterMark: 1 << 20 }) : new DiffIdCheck(descriptor, diffId, imageName);
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  let failed = false;
  const fail = (err: unknown): void => {
    if (failed) return;
    failed = true;
    input.destroy();
    output.destroy(decompressionFailed(descriptor, imageName, err));
  };
  check.on('error', fail);
  check.pipe(output);
  input.on('error', fail);

  if (compression === 'none') {
    input.pipe(check);
  } else if (compression === 'gzip') {
    const gunzip = createGunzip({ chunkSize: 1 << 20 });
    gunzip.on('error', fail);
    input.pipe(gunzip).pipe(check);
  } else {
    const { child, done } = spawnStreaming({
      description: `Decompressing zstd layer ${descriptor.digest}`,
      argv: ['zstd', '-dc', '-q'],
    });
    const stdin = child.stdin!;
    const stdout = child.stdout!;
    stdin.on('error', (err: NodeJS.ErrnoException) => {
      // zstd exits on bad input before reading everything; its exit status explains why.
      if (err.code !== 'EPIPE') fail(err);
    });
    stdout.on('error', fail);
    input.pipe(stdin);
    // End the check only once zstd has exited cleanly: if it failed, its error explains the
    // short output better than a diff-id mismatch would.
    stdout.pipe(check, { end: false });
    Promise.all([once(stdout, 'end'), done]).then(
      () => check.end(),
      (err: unknown) => fail(err),
    );
    // A consumer that stops early must not leave zstd running.
    output.on('close', () => {
      if (child.exitCode === null) child.kill();
    });
  }
  output.on('close', () => input.destroy());
  return output;
}

/** The uncompressed tar of a cached layer; errors at the end if it does not hash to `diffId`. */
export function openLayer(cache: BlobCache, layer: LayerBlob, diffId: string, imageName: string = layer.descriptor.digest): Readable {
  return decompressLayer(openLayerBlob(cache, layer, imageName), layer.descriptor, diffId, imageName);
}

/**
 * The uncompressed tar of a cached layer without the diff-id check, for a quick look before
 * the import (which checks it): hashing the uncompressed bytes cost as much as inflating them.
 */
export function openLayerUnchecked(cache: BlobCache, layer: LayerBlob, imageName: string = layer.descriptor.digest): Readable {
  return decompressLayer(openLayerBlob(cache, layer, imageName), layer.descriptor, null, imageName);
}

/** Read a whole layer and check its diff-id (what a pull does when it verifies layers). */
export async function verifyLayer(input: Readable, descriptor: Descriptor, diffId: string, imageName: string): Promise<void> {
  const stream = decompressLayer(input, descriptor, diffId, imageName);
  for await (const _chunk of stream) {
    // Only the hash matters here.
  }
}
