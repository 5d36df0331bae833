/**
 * The sha256 of a regular file's content, as hex: the one way the project hashes a file it
 * finds on disk (a staged tree described for the kept disk, an /etc being merged, the /usr
 * a sealed UKI names).
 *
 * Both forms open the file with O_NOFOLLOW: every caller has just seen a regular file by
 * lstat, and a symlink swapped in since must fail, not be followed out of the tree.
 * The synchronous form is for walks that are synchronous on purpose (tree-manifest.ts
 * describes 220k entries without a promise per entry); it reuses one buffer.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

const CHUNK_BYTES = 1 << 20;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/** Shared by every synchronous hash: only one runs at a time on the main thread. */
const syncBuffer = Buffer.allocUnsafe(CHUNK_BYTES);

export function sha256OfFileSync(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, OPEN_FLAGS);
  try {
    for (let n; (n = readSync(fd, syncBuffer, 0, syncBuffer.length, null)) > 0; ) hash.update(syncBuffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, OPEN_FLAGS);
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    for (let n; (n = (await fh.read(buffer, 0, buffer.length, null)).bytesRead) > 0; ) hash.update(buffer.subarray(0, n));
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
