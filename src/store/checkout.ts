/**
 * Check out an image tree from the store into a directory: the deployment's files.
 *
 * - Regular files are hardlinks to their objects (an object is immutable, so every
 *   deployment of every image shares one inode per distinct file). If the destination is on
 *   another filesystem than the store (EXDEV), files are copied instead, with a warning;
 *   so is a file whose object has reached the filesystem's link limit (EMLINK).
 * - A subtree can be copied rather than linked (the deployment's private, writable /etc),
 *   redirected to another destination (the image's /etc to /usr/etc, /var into the
 *   stateroot), left out (`skip`), or reduced to its directory (`mountpoint`).
 * - Directories get their mode, owner and xattrs after their content is in place, and a
 *   fixed mtime (0, like the objects), so a checkout is reproducible.
 *
 * Safety: an entry is only ever created inside a directory this checkout created itself
 * (or verified to be a real, empty directory), and with calls that fail rather than follow
 * a symlink at the final name (mkdir, link, symlink, copy with COPYFILE_EXCL). An entry
 * whose parent is not a directory of the tree is refused ("symlinked parent"), whatever
 * the tree index says. Destinations must be empty or absent.
 */
import { constants, linkSync } from 'node:fs';
import { entryExists } from '../core/fs-probe.js';
import {
  chmod,
  chown,
  copyFile,
  lchown,
  lstat,
  lutimes,
  mkdir,
  readdir,
  realpath,
  symlink,
  utimes,
} from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { warn } from '../core/log.js';
import { displayPath, isWithin, normaliseEntryPath, parentOf, ROOT_PATH } from './entry-path.js';
import type { DirEntry, FileEntry, TreeEntry, TreeIndex } from './index-format.js';
import { objectPath, storeLayout, type StoreLayout } from './layout.js';
import { tempNameFor } from '../core/durable-file.js';
import { applyXattrs, type XattrTarget } from './xattrs.js';

export type CheckoutMethod = 'hardlink' | 'copy' | 'skip' | 'mountpoint';

export interface SubtreeRule {
  /** Image path of the subtree, e.g. "/etc" or "var". */
  path: string;
  /** How the subtree is checked out; default: the checkout's method. */
  method?: CheckoutMethod;
  /**
   * Absolute directory that receives the subtree instead of <dest>/<path>. It must be absent
   * (its parent must exist) or an empty directory, with no symlink on the way.
   */
  destination?: string;
}

export interface CheckoutOptions {
  /** Default for entries no rule covers: hardlink (default) or copy. */
  method?: 'hardlink' | 'copy';
  /** Check out only this part of the image; its root becomes `dest`. */
  subtree?: string;
  /** Longest matching path wins. */
  rules?: readonly SubtreeRule[];
  /** Parallel link/copy operations. */
  concurrency?: number;
}

export interface CheckoutResult {
  dirs: number;
  files: number;
  symlinks: number;
  hardlinked: number;
  copied: number;
  bytesCopied: number;
  /** True when the store is on another filesystem and hardlinks fell back to copies. */
  crossDevice: boolean;
}

const FIXED_MTIME = 0;

interface Placement {
  base: string;
  rel: string;
  method: CheckoutMethod;
  /** The entry is the root of its placement (dest or a rule destination). */
  isPlacementRoot: boolean;
}

interface NormalisedRule {
  path: string;
  method: CheckoutMethod | undefined;
  destination: string | undefined;
}

/** Where (and how) an entry lands; null when it is left out. Pure. */
export function placeEntry(
  path: string,
  dest: string,
  subtree: string,
  defaultMethod: 'hardlink' | 'copy',
  rules: readonly NormalisedRule[],
): Placement | null {
  if (!isWithin(path, subtree)) return null;
  let methodRule: NormalisedRule | undefined;
  let destRule: NormalisedRule | undefined;
  for (const r of rules) {
    if (!isWithin(path, r.path)) continue;
    if (r.method !== undefined && (!methodRule || r.path.length > methodRule.path.length)) methodRule = r;
    if (r.destination !== undefined && isWithin(r.path, subtree) && (!destRule || r.path.length > destRule.path.length)) {
      destRule = r;
    }
  }
  const method = methodRule?.method ?? defaultMethod;
  if (method === 'skip') return null;
  if (method === 'mountpoint' && path !== methodRule?.path) return null;
  const anchor = destRule ? destRule.path : subtree;
  const base = destRule?.destination ?? dest;
  const rel = anchor === ROOT_PATH ? path : path === anchor ? '' : path.slice(anchor.length + 1);
  return { base, rel, method, isPlacementRoot: rel === '' };
}

/** Check out `tree` (from the store under `root`) into `dest`. */
export async function checkoutTree(
  root: string,
  tree: TreeIndex,
  dest: string,
  options: CheckoutOptions = {},
): Promise<CheckoutResult> {
  return withContext(`Checking out image ${tree.header.manifestDigest} to ${dest}`, async () => {
    const layout = storeLayout(root);
    const subtree = normaliseEntryPath(options.subtree ?? '', 'checkout subtree');
    const defaultMethod = options.method ?? 'hardlink';
    const rules: NormalisedRule[] = (options.rules ?? []).map((r) => ({
      path: normaliseEntryPath(r.path, 'checkout rule path'),
      method: r.method,
      destination: r.destination === undefined ? undefined : resolve(r.destination),
    }));
    const run = new Checkout(layout, options.concurrency ?? 16);
    const destAbs = resolve(dest);

    const subtreeRoot = tree.entries.find((e) => e.path === subtree);
    if (!subtreeRoot) {
      throw new UserError(`Image ${tree.header.manifestDigest} has no ${displayPath(subtree)}`, {
        hint: 'check the path of the subtree to check out',
      });
    }
    if (subtreeRoot.kind !== 'dir') throw notADirectory(subtreeRoot);

    // Main destination first, then redirected subtrees (their destination may lie inside
    // the main one, e.g. <dest>/usr/etc, which must exist by then).
    const buckets = new Map<string, Array<{ entry: TreeEntry; place: Placement }>>();
    for (const entry of tree.entries) {
      const place = placeEntry(entry.path, destAbs, subtree, defaultMethod, rules);
      if (!place) continue;
      let bucket = buckets.get(place.base);
      if (!bucket) buckets.set(place.base, (bucket = []));
      bucket.push({ entry, place });
    }
    const order = [...buckets.keys()].sort((a, b) => (a === destAbs ? -1 : b === destAbs ? 1 : 0));
    for (const base of order) {
      const bucket = buckets.get(base) as Array<{ entry: TreeEntry; place: Placement }>;
      await run.prepareDestination(base);
      for (const { entry, place } of bucket) await run.add(entry, place);
    }
    await run.finish(tree);
    return run.result;
  });
}

class Checkout {
  readonly result: CheckoutResult = {
    dirs: 0,
    files: 0,
    symlinks: 0,
    hardlinked: 0,
    copied: 0,
    bytesCopied: 0,
    crossDevice: false,
  };
  /** Absolute paths of directories this checkout created or verified, by placement. */
  private readonly dirs = new Set<string>();
  private readonly dirMeta: Array<{ abs: string; entry: DirEntry }> = [];
  private readonly xattrTargets: XattrTarget[] = [];
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown = null;

  constructor(
    private readonly layout: StoreLayout,
    private readonly concurrency: number,
  ) {}

  async prepareDestination(base: string): Promise<void> {
    const parent = dirname(base);
    const real = await realpath(parent).catch(() => null);
    if (real !== parent) {
      throw new UserError(`Checkout destination ${base}: ${parent} is not an existing directory reached without symlinks`, {
        hint: 'create the parent directory first, and give a path that has no symlink in it',
      });
    }
    try {
      await mkdir(base, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await lstat(base);
      if (!st.isDirectory() || (await readdir(base)).length > 0) {
        throw new UserError(`Checkout destination ${base} exists and is not an empty directory`, {
          hint: 'remove it, or check out to a new directory',
        });
      }
    }
    this.dirs.add(base);
  }

  async add(entry: TreeEntry, place: Placement): Promise<void> {
    if (this.failure) throw this.failure;
    const abs = place.isPlacementRoot ? place.base : join(place.base, place.rel);
    if (!place.isPlacementRoot) {
      const parentAbs = dirname(abs);
      if (!this.dirs.has(parentAbs)) {
        throw new UserError(
          `Refusing to check out ${displayPath(entry.path)}: its parent ${displayPath(parentOf(entry.path))} is not a directory of the image (symlinked parent?)`,
          { hint: 'the tree index is corrupt or hostile; remove the image from the store and pull it again' },
        );
      }
    }
    switch (entry.kind) {
      case 'dir':
        if (!place.isPlacementRoot) await mkdir(abs, { mode: 0o700 });
        this.dirs.add(abs);
        this.dirMeta.push({ abs, entry });
        this.result.dirs++;
        return;
      case 'symlink':
        if (place.isPlacementRoot) throw notADirectory(entry);
        await this.schedule(async () => {
          await symlink(entry.target, abs);
          await lchown(abs, entry.uid, entry.gid);
          await lutimes(abs, FIXED_MTIME, FIXED_MTIME);
          if (entry.xattrs.length > 0) this.xattrTargets.push({ path: abs, xattrs: entry.xattrs });
          this.result.symlinks++;
        });
        return;
      case 'file':
        if (place.isPlacementRoot) throw notADirectory(entry);
        await this.schedule(() => this.placeFile(entry, abs, place.method === 'copy'));
        return;
    }
  }

  private async schedule(work: () => Promise<void>): Promise<void> {
    while (this.pending.size >= this.concurrency) await Promise.race(this.pending);
    if (this.failure) throw this.failure;
    const p: Promise<void> = work()
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  private async placeFile(entry: FileEntry, abs: string, copy: boolean): Promise<void> {
    const source = objectPath(this.layout, entry.object);
    if (!copy && !this.result.crossDevice) {
      try {
        // Synchronous: one short system call, cheaper than a hand-off to the thread pool (see object-writer.ts).
        linkSync(source, abs);
        this.result.hardlinked++;
        this.result.files++;
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') throw missingObject(entry);
        // EMLINK: the object has the filesystem's maximum of links (65000 on ext4), e.g. an
        // empty file used all over many deployments: this one entry gets a copy.
        if (code !== 'EXDEV' && code !== 'EMLINK') throw err;
        if (code === 'EXDEV' && !this.result.crossDevice) {
          this.result.crossDevice = true;
          warn(`the object store (${this.layout.objectsDir}) is on another filesystem than ${abs}: copying files instead of hardlinking`);
        }
      }
    }
    try {
      await copyFile(source, abs, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(await entryExists(source))) throw missingObject(entry);
      throw err;
    }
    await chown(abs, entry.uid, entry.gid);
    await chmod(abs, entry.mode);
    await utimes(abs, FIXED_MTIME, FIXED_MTIME);
    if (entry.xattrs.length > 0) this.xattrTargets.push({ path: abs, xattrs: entry.xattrs });
    this.result.copied++;
    this.result.bytesCopied += entry.size;
    this.result.files++;
  }

  async finish(tree: TreeIndex): Promise<void> {
    await Promise.all(this.pending);
    if (this.failure) throw this.failure;
    // Deepest first: setting a child's metadata would not touch the parent, but creating it
    // did; and a parent's final mode must not stand in the way of its children's. Directories
    // of one depth are independent of each other, so each depth runs in parallel (one
    // directory after another cost three thread-pool round trips each, thousands of times).
    const byDepth = new Map<number, Array<{ abs: string; entry: DirEntry }>>();
    for (const d of this.dirMeta) {
      const depth = d.abs.split('/').length;
      let level = byDepth.get(depth);
      if (!level) byDepth.set(depth, (level = []));
      level.push(d);
    }
    for (const depth of [...byDepth.keys()].sort((a, b) => b - a)) {
      await inParallel(byDepth.get(depth) as Array<{ abs: string; entry: DirEntry }>, this.concurrency, async ({ abs, entry }) => {
        await chown(abs, entry.uid, entry.gid);
        await chmod(abs, entry.mode);
        await utimes(abs, FIXED_MTIME, FIXED_MTIME);
      });
    }
    for (let i = this.dirMeta.length - 1; i >= 0; i--) {
      const { abs, entry } = this.dirMeta[i] as { abs: string; entry: DirEntry };
      if (entry.xattrs.length > 0) this.xattrTargets.push({ path: abs, xattrs: entry.xattrs });
    }
    await applyXattrs(
      this.xattrTargets,
      tempNameFor(join(this.layout.tmpDir, 'checkout-xattrs')),
      `Setting extended attributes in the checkout of ${tree.header.manifestDigest}`,
    );
  }
}

/** Run `work` on every item, at most `limit` at a time; the first failure rejects once all stopped. */
async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw failure;
}

function notADirectory(entry: TreeEntry): UserError {
  return new UserError(`${displayPath(entry.path)} in the image is a ${entry.kind}, not a directory to check out or redirect`, {
    hint: 'subtree and redirect rules must name directories of the image',
  });
}

function missingObject(entry: FileEntry): UserError {
  return new UserError(`Object ${entry.object} for ${displayPath(entry.path)} is missing from the store`, {
    hint: 'the store is damaged: run `bootc internals fsck`, then pull the image again',
  });
}

