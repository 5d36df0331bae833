/**
 * Durable files: the one way persistent state is written (DESIGN.md, "On-disk format"), on
 * the physical root, the blob store, the ESP mounted at /boot, and build outputs alike.
 *
 *   1. write under a temporary name in the same directory: `<name>.tmp-<pid>-<random>`, the
 *      one temp-name pattern (cleanup of leftovers matches it with `isTempName`)
 *   2. fsync the temporary file
 *   3. rename it over the final name
 *   4. fsync the renamed file, then its directory. On FAT (the ESP) the first of these is what
 *      makes the rename last: vfat fills the new directory entry (size, first cluster) in when
 *      the file's inode is written back, not at the rename, so with only the directory synced
 *      a power cut can leave the new name on an empty file (seen in the power-cut soak).
 *
 * A failure before the rename removes the temporary file; a crash leaves the old file or the
 * new one under the final name, and at worst a temporary file that cleanup recognises.
 */
import { randomBytes } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { processRuns } from './process.js';

/** What every temporary name carries between the final name and `<pid>-<random>`. */
export const TEMP_MARK = '.tmp-';
const TEMP_SUFFIX = /\.tmp-\d+-[0-9a-z]+$/;

/** A temporary name beside `path`, unique across processes and calls. */
export function tempNameFor(path: string): string {
  return `${path}${TEMP_MARK}${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Whether a file name (or path) is a temporary name of tempNameFor. */
export function isTempName(name: string): boolean {
  return TEMP_SUFFIX.test(name);
}

/** The name a temporary name stands for (`a.efi.tmp-12-ab` → `a.efi`), or null for another name. */
export function finalNameOf(tempName: string): string | null {
  const m = TEMP_SUFFIX.exec(tempName);
  return m === null ? null : tempName.slice(0, m.index);
}

/** fsync a file by path. */
export async function fsyncPath(path: string): Promise<void> {
  await fsyncOpened(path, 'r');
}

/**
 * fsync a directory, after renames into it or removals from it. `noFollow`: refuse a
 * symbolic link as the last component (a tree being written, e.g. the /etc merge).
 */
export async function fsyncDir(dir: string, options: { noFollow?: boolean } = {}): Promise<void> {
  await fsyncOpened(dir, constants.O_RDONLY | constants.O_DIRECTORY | (options.noFollow ? constants.O_NOFOLLOW : 0));
}

async function fsyncOpened(path: string, flags: string | number): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Remove the temporary files (tempNameFor) that interrupted writes left in `dir`, except
 * those of processes still running. Returns the names removed.
 */
export async function removeTempFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!isTempName(name) || processRuns(tempNameOwner(name))) continue;
    await rm(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

const tempNameOwner = (name: string): number => Number(/\.tmp-(\d+)-[0-9a-z]+$/.exec(name)![1]);

/** Step 4, after `rename(…, path)`: the file at its new name, then its directory. */
export async function fsyncRenamed(path: string): Promise<void> {
  await fsyncPath(path);
  await fsyncDir(dirname(path));
}

/** Rename a complete, fsynced file into place and make the rename durable (steps 3 and 4). */
export async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to);
  await fsyncRenamed(to);
}

/**
 * Replace `path` with the file `write` creates at the temporary name it is given (steps 1-4).
 * `write` need not fsync: this does.
 */
export async function replaceFile(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = tempNameFor(path);
  try {
    await write(tmp);
    await fsyncPath(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncRenamed(path);
}

/**
 * Replace `path` with `data` (readers see the old content or the new, never a mix). Data
 * given as chunks is written one chunk at a time, so a large index need not be one string.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<string>, mode = 0o644): Promise<void> {
  await replaceFile(path, async (tmp) => {
    const fh = await open(tmp, 'wx', mode);
    try {
      if (typeof data === 'string' || data instanceof Uint8Array) await fh.writeFile(data);
      else for (const chunk of data) await fh.write(chunk);
    } finally {
      await fh.close();
    }
  });
}

/**
 * Stream `source` into a new file `tmp` (created with `mode` less the umask). Not
 * fs.copyFile: it gives the copy the source's mode, which vfat mounted with a umask refuses
 * (EPERM).
 */
export async function streamCopy(source: string, tmp: string, mode = 0o644): Promise<void> {
  await pipeline(createReadStream(source, { highWaterMark: 1 << 20 }), createWriteStream(tmp, { flags: 'wx', mode }));
}

/** Replace `dest` with a copy of `source`, streamed (a UKI or an initrd need not fit in memory). */
export async function copyFileDurably(source: string, dest: string, mode = 0o644): Promise<void> {
  await replaceFile(dest, (tmp) => streamCopy(source, tmp, mode));
}
