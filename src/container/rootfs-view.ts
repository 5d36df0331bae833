/**
 * A container image's root filesystem as the image-side commands (`bootc container lint`,
 * `inspect`, `ukify`) see it: paths relative to the root, never following a symlink out
 * of it, and "not there" as null rather than an exception, so each check reads as the
 * rule it enforces.
 */
import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export class RootfsView {
  readonly root: string;
  /** `--rootfs /`: the image is running (a `RUN` step of a build), not unpacked elsewhere. */
  readonly isRunningRoot: boolean;
  private rootDevice: number | undefined;

  constructor(root: string) {
    this.root = resolve(root);
    this.isRunningRoot = this.root === '/';
  }

  path(rel: string): string {
    return join(this.root, rel);
  }

  async lstat(rel: string): Promise<Stats | null> {
    try {
      return await lstat(this.path(rel));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async readdir(rel: string): Promise<Dirent[] | null> {
    try {
      return (await readdir(this.path(rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  /** A regular file's text; null when absent or not a regular file. */
  async readText(rel: string): Promise<string | null> {
    const st = await this.lstat(rel);
    if (!st?.isFile()) return null;
    return readFile(this.path(rel), 'utf8');
  }

  async readlink(rel: string): Promise<string | null> {
    try {
      return await readlink(this.path(rel));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async isDirectory(rel: string): Promise<boolean> {
    return (await this.lstat(rel))?.isDirectory() ?? false;
  }

  /** Whether `rel` is on another filesystem than the root: a mount point (/proc, /run, …). */
  async isOtherFilesystem(rel: string): Promise<boolean> {
    this.rootDevice ??= (await lstat(this.root)).dev;
    const st = await this.lstat(rel);
    return st !== null && st.dev !== this.rootDevice;
  }

  /**
   * Every entry below `rel` (not `rel` itself), depth first, names sorted; never crosses
   * into another filesystem or follows a symlink. `descend` may prune a directory.
   */
  async *walk(rel: string, descend: (rel: string, st: Stats) => boolean = () => true): AsyncGenerator<{ rel: string; st: Stats }> {
    const entries = await this.readdir(rel);
    if (!entries) return;
    for (const entry of entries) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const st = await this.lstat(child);
      if (!st) continue;
      yield { rel: child, st };
      if (st.isDirectory() && !(await this.isOtherFilesystem(child)) && descend(child, st)) yield* this.walk(child, descend);
    }
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
