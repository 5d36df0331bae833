/**
 * The `/etc` merge on real directories: scan the three trees, plan with `etc-merge.ts`,
 * write the merged /etc into a NEW directory that the caller swaps in with one rename.
 *
 * 1. scan: walk each tree without following symlinks (lstat), hash every file (sha256),
 *    read every xattr of the tree with ONE getfattr process;
 * 2. plan: `planEtcMerge` (pure);
 * 3. write: create the destination (it must not exist), copy each planned entry from the tree
 *    the plan names; files are opened O_NOFOLLOW on both sides and re-hashed while copied,
 *    so a file that changed since the scan fails the merge instead of being merged blind;
 *    then owners, modes and times (directories last, deepest first, so a 0500 directory is
 *    still writable while it fills); then every xattr with ONE `setfattr --restore` (after
 *    chown, which would clear `security.capability`); then fsync of every file and directory.
 * A failure at any step removes the half-written destination.
 */
import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lchown, lstat, lutimes, mkdir, open, opendir, readlink, rm, symlink, utimes, chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cancellation } from '../core/cancel.js';
import { run } from '../core/exec.js';
import { UserError, withContext } from '../core/errors.js';
import { fsyncDir } from '../core/durable-file.js';
import { sha256OfFile } from '../core/file-hash.js';
import type { Xattr } from '../store/object-id.js';
import { applyXattrs, parseXattrDump, type XattrTarget } from '../store/xattrs.js';
import { ETC_ROOT, planEtcMerge, type EtcConflict, type EtcMergePlan, type EtcNode, type EtcSource } from './etc-merge.js';

/** Copy buffer for re-hashing while copying; /etc files are small, this is plenty. */
const COPY_CHUNK = 128 * 1024;

function childPath(dir: string, rel: string): string {
  return rel === ETC_ROOT ? dir : join(dir, rel);
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'named pipe';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'special file';
}

/** Every xattr below `dir` (security.selinux left out), keyed by path relative to `dir`. */
async function readTreeXattrs(dir: string, label: string): Promise<Map<string, Xattr[]>> {
  const result = await run({
    description: `Reading extended attributes of ${label} (${dir})`,
    argv: ['getfattr', '--absolute-names', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'base64', dir],
  });
  const out = new Map<string, Xattr[]>();
  for (const [abs, xattrs] of parseXattrDump(result.stdout)) {
    if (xattrs.length === 0) continue;
    const rel = abs === dir ? ETC_ROOT : abs.startsWith(dir + '/') ? abs.slice(dir.length + 1) : null;
    if (rel !== null) out.set(rel, xattrs);
  }
  return out;
}

/**
 * A tree as the merge sees it: relative path → node, the directory itself at ''.
 * `label` names the tree in errors ("the live /etc").
 */
export async function scanEtcTree(treeDir: string, label: string): Promise<Map<string, EtcNode>> {
  // getfattr reports absolute, normalised paths; matching them needs the same spelling.
  const dir = resolve(treeDir);
  return withContext(`Scanning ${label} (${dir})`, async () => {
    const rootStat = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new UserError(`${label} ${dir} does not exist`, { hint: 'the deployment is incomplete; redeploy it (bootc upgrade or bootc switch)' });
      }
      throw err;
    });
    if (!rootStat.isDirectory()) {
      throw new UserError(`${label} ${dir} is not a directory`, { hint: 'it must be a real directory, not a symlink or file' });
    }
    const xattrs = await readTreeXattrs(dir, label);
    const tree = new Map<string, EtcNode>();
    const visit = async (rel: string, st: Stats): Promise<void> => {
      cancellation.check();
      const abs = childPath(dir, rel);
      const base = { uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        tree.set(rel, { kind: 'dir', mode: st.mode & 0o7777, ...base, xattrs: xattrs.get(rel) ?? [] });
        const names: string[] = [];
        for await (const d of await opendir(abs)) names.push(d.name);
        names.sort();
        for (const name of names) {
          const childRel = rel === ETC_ROOT ? name : `${rel}/${name}`;
          await visit(childRel, await lstat(join(abs, name)));
        }
      } else if (st.isSymbolicLink()) {
        tree.set(rel, { kind: 'symlink', target: await readlink(abs), ...base });
      } else if (st.isFile()) {
        tree.set(rel, { kind: 'file', contentId: await sha256OfFile(abs), mode: st.mode & 0o7777, ...base, xattrs: xattrs.get(rel) ?? [] });
      } else {
        throw new UserError(`${label} has a ${kindOf(st)} at ${abs}`, {
          hint: 'only files, directories and symlinks can be carried into a new deployment; remove it (or create it at boot with tmpfiles.d)',
        });
      }
    };
    await visit(ETC_ROOT, rootStat);
    return tree;
  });
}

export interface EtcMergeTrees {
  /** The booted deployment's pristine /etc (its /usr/etc). */
  oldDefault: string;
  /** The new deployment's pristine /etc (its /usr/etc). */
  newDefault: string;
  /** The live /etc. */
  current: string;
}

async function copyFileChecked(from: string, to: string, node: EtcNode & { kind: 'file' }): Promise<Stats> {
  const src = await open(from, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = await src.stat();
    const dst = await open(to, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      const hash = createHash('sha256');
      const buf = Buffer.allocUnsafe(COPY_CHUNK);
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        await dst.write(chunk);
      }
      if (hash.digest('hex') !== node.contentId) {
        throw new UserError(`${from} changed while /etc was being merged`, { hint: 'retry once nothing is writing to it' });
      }
      // chown first: it clears setuid/setgid bits that chmod then sets.
      await dst.chown(node.uid, node.gid);
      await dst.chmod(node.mode);
      await dst.utimes(st.atime, st.mtime);
      await dst.sync();
    } finally {
      await dst.close();
    }
    return st;
  } finally {
    await src.close();
  }
}

/**
 * Write `plan` into `destination` (which must not exist), copying each entry from the tree
 * its source names. Nothing is left at `destination` if this fails.
 */
export async function writeMergedEtc(
  plan: EtcMergePlan,
  sources: Readonly<Record<EtcSource, string>>,
  destination: string,
): Promise<void> {
  await withContext(`Writing the merged /etc to ${destination}`, async () => {
    await mkdir(destination, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') {
        throw new UserError(`${destination} already exists`, {
          hint: 'it is left over from an interrupted merge; remove it and retry',
        });
      }
      throw err;
    });
    try {
      await writeEntries(plan, sources, destination);
    } catch (err) {
      await rm(destination, { recursive: true, force: true });
      throw err;
    }
  });
}

async function writeEntries(plan: EtcMergePlan, sources: Readonly<Record<EtcSource, string>>, destination: string): Promise<void> {
  const dirs: { path: string; node: EtcNode & { kind: 'dir' }; from: string }[] = [];
  const xattrTargets: XattrTarget[] = [];
  let rootPlanned = false;
  for (const entry of plan.entries) {
    cancellation.check();
    const from = childPath(sources[entry.source], entry.path);
    const to = childPath(destination, entry.path);
    const node = entry.node;
    if (node.kind === 'dir') {
      if (entry.path === ETC_ROOT) rootPlanned = true;
      else await mkdir(to, { mode: 0o700 });
      dirs.push({ path: to, node, from });
      if (node.xattrs.length > 0) xattrTargets.push({ path: to, xattrs: node.xattrs });
    } else if (node.kind === 'symlink') {
      const target = await readlink(from);
      if (target !== node.target) {
        throw new UserError(`${from} changed while /etc was being merged`, { hint: 'retry once nothing is writing to it' });
      }
      const st = await lstat(from);
      await symlink(node.target, to);
      await lchown(to, node.uid, node.gid);
      await lutimes(to, st.atime, st.mtime);
    } else {
      await copyFileChecked(from, to, node);
      if (node.xattrs.length > 0) xattrTargets.push({ path: to, xattrs: node.xattrs });
    }
  }
  if (!rootPlanned) {
    // No tree had /etc metadata to offer (cannot happen with scanned trees): the usual 0755 root:root.
    dirs.unshift({ path: destination, node: { kind: 'dir', mode: 0o755, uid: 0, gid: 0, xattrs: [] }, from: '' });
  }
  // Deepest first: a directory's times are final only once its children exist.
  for (const d of [...dirs].reverse()) {
    await lchown(d.path, d.node.uid, d.node.gid);
    await chmod(d.path, d.node.mode);
    if (d.from !== '') {
      const st = await lstat(d.from);
      await utimes(d.path, st.atime, st.mtime);
    }
  }
  await applyXattrs(xattrTargets, `${destination}.xattrs-${process.pid}`, `Restoring extended attributes in ${destination}`);
  for (const d of [...dirs].reverse()) await fsyncDir(d.path, { noFollow: true });
}

export interface EtcMergeOutcome {
  plan: EtcMergePlan;
  conflicts: readonly EtcConflict[];
}

/**
 * Merge the three trees into `destination` (a new directory, normally beside the new
 * deployment's /etc, renamed over it by the caller). Returns the plan and its conflicts.
 */
export async function mergeEtc(trees: EtcMergeTrees, destination: string): Promise<EtcMergeOutcome> {
  return withContext('Merging /etc', async () => {
    const [oldDefault, newDefault, current] = await Promise.all([
      scanEtcTree(trees.oldDefault, 'the booted image defaults'),
      scanEtcTree(trees.newDefault, 'the new image defaults'),
      scanEtcTree(trees.current, 'the live /etc'),
    ]);
    const plan = planEtcMerge({ oldDefault, newDefault, current });
    await writeMergedEtc(plan, { current: trees.current, newDefault: trees.newDefault }, destination);
    return { plan, conflicts: plan.conflicts };
  });
}
