/** Existence checks and directory listings where "not there" is an answer, not an error. */
import { lstat, readdir, stat } from 'node:fs/promises';

/** True if something is at `path`, following symlinks (a dangling link counts as absent). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** True if a directory entry named `path` exists, without following a final symlink. */
export async function entryExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The names in `dir`, or none when it does not exist. */
export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
