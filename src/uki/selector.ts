/**
 * The deployment selector: how a sealed UKI (built into the image, signed, so its command
 * line cannot carry a deployment id) names the deployment to boot. It is a digest of the
 * image's `/usr` tree, which the UKI's command line carries as
 * `bootc.deploy-selector=<hex>`; install records, per selector, which deployment has that
 * tree (`/bootc/selectors/<hex>` holding `<stateroot>/<id>`), and the addon initrd's
 * prepare-root reads that record.
 *
 * Computed the same way from three places: an image root directory at build time
 * (`bootc container ukify --rootfs /`), a checked-out deployment, and the store's tree
 * index. So it covers only what all three hold identically:
 *
 *   - entries under `usr/` (the image's immutable part; `/etc` and `/var` are machine state),
 *     sorted by path in byte order
 *   - but not `usr/etc` (a deployment keeps the image's pristine /etc there) and not UKIs
 *     (`usr/lib/modules/<kver>/*.efi`): the UKI carrying the selector cannot be part of it
 *   - per entry: kind, path, permission bits, owner, group, and the sha256 of a file's
 *     content or a symlink's target; no times, no xattrs (a build root may add SELinux labels)
 *
 * Each entry is one JSON array per line; the selector is the sha256 of those lines.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { sha256OfFile } from '../core/file-hash.js';
import type { TreeEntry } from '../store/index-format.js';

/** The kernel argument of a sealed UKI that names its deployment by the sha256 of its /usr tree. */
export const DEPLOY_SELECTOR_KARG = 'bootc.deploy-selector';

/** Under the physical root: one file per selector, holding `<stateroot>/<id>`. */
export const SELECTORS_DIR = 'bootc/selectors';

const SELECTOR_PATTERN = /^[0-9a-f]{64}$/;

export interface SelectorEntry {
  kind: 'dir' | 'file' | 'symlink';
  /** Store path form: relative, no leading slash. */
  path: string;
  mode: number;
  uid: number;
  gid: number;
  /** sha256 hex of a file's content; the target of a symlink; "" for a directory. */
  content: string;
}

/** Whether `path` (store form) takes part in the selector. */
export function coveredBySelector(path: string): boolean {
  if (path !== 'usr' && !path.startsWith('usr/')) return false;
  if (path === 'usr/etc' || path.startsWith('usr/etc/')) return false;
  return !/^usr\/lib\/modules\/[^/]+\/[^/]+\.efi$/.test(path);
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** The selector of a set of entries (any order; uncovered paths are ignored). */
export function selectorOf(entries: readonly SelectorEntry[]): string {
  const hash = createHash('sha256');
  const covered = entries.filter((e) => coveredBySelector(e.path)).sort((a, b) => byteOrder(a.path, b.path));
  for (const e of covered) {
    const content = e.kind === 'symlink' ? createHash('sha256').update(e.content).digest('hex') : e.content;
    hash.update(JSON.stringify([e.kind, e.path, e.mode & 0o7777, e.uid, e.gid, content]) + '\n');
  }
  return hash.digest('hex');
}

/** Files hashed at once: enough to keep the disk busy, few enough for 2 cores. */
const PARALLEL_HASHES = 8;

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** From an image root (build time) or a deployment directory (install time). */
export async function selectorOfDirectory(root: string): Promise<string> {
  const found: Array<Omit<SelectorEntry, 'content'> & { content?: string }> = [];
  const walk = async (rel: string): Promise<void> => {
    const st = await lstat(join(root, rel));
    const base = { path: rel, mode: st.mode, uid: st.uid, gid: st.gid };
    if (st.isDirectory()) {
      found.push({ kind: 'dir', ...base, content: '' });
      for (const name of await readdir(join(root, rel))) {
        const child = `${rel}/${name}`;
        if (child === 'usr/etc') continue;
        await walk(child);
      }
    } else if (st.isSymbolicLink()) {
      found.push({ kind: 'symlink', ...base, content: await readlink(join(root, rel)) });
    } else if (st.isFile()) {
      found.push({ kind: 'file', ...base });
    }
    // device nodes, fifos, sockets: the store does not keep them, so neither does the selector
  };
  try {
    await walk('usr');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(`${root} has no /usr: cannot compute its deployment selector`, { hint: 'pass the root of a bootable image (--rootfs)' });
    }
    throw err;
  }
  const files = found.filter((e) => e.kind === 'file' && coveredBySelector(e.path));
  await mapLimited(files, PARALLEL_HASHES, async (e) => {
    e.content = await sha256OfFile(join(root, e.path));
  });
  return selectorOf(found.filter((e): e is SelectorEntry => e.content !== undefined));
}

/**
 * From the store's tree index of an image; `contentPath` gives the file holding an object's
 * content (the store's objects are plain files: objectPath).
 */
export async function selectorOfTree(entries: readonly TreeEntry[], contentPath: (objectId: string) => string): Promise<string> {
  const covered = entries.filter((e) => coveredBySelector(e.path));
  const selectorEntries = await mapLimited(covered, PARALLEL_HASHES, async (e): Promise<SelectorEntry> => {
    switch (e.kind) {
      case 'dir':
        return { kind: 'dir', path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, content: '' };
      case 'symlink':
        return { kind: 'symlink', path: e.path, mode: 0o777, uid: e.uid, gid: e.gid, content: e.target };
      case 'file':
        return { kind: 'file', path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, content: await sha256OfFile(contentPath(e.object)) };
    }
  });
  return selectorOf(selectorEntries);
}

/** The selector a UKI's command line names, if any. */
export function selectorInCmdline(cmdline: string): string | null {
  const words = cmdline.split(/\s+/).filter((w) => w.startsWith(`${DEPLOY_SELECTOR_KARG}=`));
  const last = words.at(-1);
  return last === undefined ? null : last.slice(DEPLOY_SELECTOR_KARG.length + 1);
}

export function checkSelector(selector: string): string {
  if (!SELECTOR_PATTERN.test(selector)) throw new RangeError(`not a deployment selector: ${JSON.stringify(selector)}`);
  return selector;
}

/**
 * Points `selector` at a deployment on the physical root `root`. A later deployment of
 * the same tree takes the selector over: the sealed UKI then boots the newest one.
 */
export async function recordSelector(root: string, selector: string, stateroot: string, deploymentId: string): Promise<void> {
  checkSelector(selector);
  const dir = join(root, SELECTORS_DIR);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFileAtomic(join(dir, selector), `${stateroot}/${deploymentId}\n`, 0o644);
}
