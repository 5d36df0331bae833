/**
 * The three-way `/etc` merge run when a staged deployment is finalised (upstream: ostree's
 * config merge, bootc docs "filesystem.md"). Pure: three trees in, a plan and conflicts out;
 * `etc-merge-apply.ts` scans real directories into these trees and writes the plan.
 *
 * Inputs, as path → node maps (paths relative to /etc, no leading slash; the /etc directory
 * itself is the empty path ''):
 * - `oldDefault`: the booted deployment's pristine /etc (its /usr/etc),
 * - `newDefault`: the new deployment's pristine /etc (its /usr/etc),
 * - `current`: the live /etc.
 *
 * The new image's defaults are the base. The local diff (current against oldDefault) is laid
 * on top: whatever the user changed, added or deleted keeps the user's state, and the image
 * can no longer update it. A local change means the node differs in kind, content, mode,
 * owner, group, xattrs or symlink target (a symlink's own mode means nothing on Linux).
 * A path the user did not touch follows the new image (changed, added or removed).
 *
 * Per path, top-down (a parent is decided before its children; nothing is kept below a path
 * whose result is not a directory). "image changed" compares newDefault with oldDefault;
 * where the local result hides the image's whole subtree (local delete, local non-directory)
 * it means "anything in the image's subtree changed".
 *
 * | local (current vs oldDefault) | image (newDefault vs oldDefault) | result | conflict |
 * | --- | --- | --- | --- |
 * | untouched | any | newDefault's node (absent if the image removed it) | none |
 * | untouched directory, image removed it or made it a non-directory, user content below | removed / other kind | the directory (from current) holding the user's changed and added entries; untouched entries below follow the image | `type` when the image has a non-directory there; each user-changed entry below reports its own |
 * | changed (content, mode, owner, xattrs, symlink target, or kind) | untouched, or changed to the same node | current | none |
 * | changed | changed differently, same kind | current | `both-modified` |
 * | changed | changed to another kind (file ↔ directory ↔ symlink) | current; the image's subtree is dropped | `type` |
 * | changed | removed | current | `image-removed` |
 * | directory metadata changed (mode, owner, xattrs) | directory kept | the directory's metadata from current; children decided one by one | `both-modified` if the image changed the metadata too |
 * | added | absent | current | none |
 * | added | added the same node | current | none |
 * | added | added something else | current | `both-added` (or `type` when kinds differ) |
 * | deleted | image subtree untouched, or removed too | absent | none |
 * | deleted | image changed it (or anything below a deleted directory) | absent, stays deleted | `local-removed` |
 *
 * Hardlinks between /etc files are not a tree property here: each path is its own node and
 * is written as its own file (as ostree's merge copies them).
 */
import type { Xattr } from '../store/object-id.js';
import { invariant } from '../core/errors.js';

export interface EtcFile {
  readonly kind: 'file';
  /** Content identity (sha256 hex of the bytes); two files with equal ids have equal bytes. */
  readonly contentId: string;
  /** Permission bits including setuid/setgid/sticky (`mode & 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly xattrs: readonly Xattr[];
}

export interface EtcSymlink {
  readonly kind: 'symlink';
  readonly target: string;
  readonly uid: number;
  readonly gid: number;
}

export interface EtcDir {
  readonly kind: 'dir';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly xattrs: readonly Xattr[];
}

export type EtcNode = EtcFile | EtcSymlink | EtcDir;
export type EtcNodeKind = EtcNode['kind'];
export type EtcTree = ReadonlyMap<string, EtcNode>;

export type EtcSource = 'current' | 'newDefault';

export interface PlannedEntry {
  readonly path: string;
  readonly source: EtcSource;
  readonly node: EtcNode;
}

export type EtcConflictKind =
  /** User and image changed the same path differently; the user's version is kept. */
  | 'both-modified'
  /** User and image both created the path, differently; the user's version is kept. */
  | 'both-added'
  /** One side has a file, the other a directory or symlink; the user's version is kept. */
  | 'type'
  /** The image removed a path the user changed; the user's version is kept. */
  | 'image-removed'
  /** The user removed a path the image changed; it stays removed. */
  | 'local-removed';

export interface EtcConflict {
  readonly path: string;
  readonly kind: EtcConflictKind;
  /** What the merged /etc has at the path: the user's node, or nothing (a user deletion). */
  readonly kept: 'local' | 'deleted';
  /** Kind of the user's node, null when the user deleted it. */
  readonly local: EtcNodeKind | null;
  /** Kind of the new image's node, null when the image removed it. */
  readonly image: EtcNodeKind | null;
}

export interface EtcMergePlan {
  /** The merged tree, parents before children. */
  readonly entries: readonly PlannedEntry[];
  /** Paths of the new image's /etc that the merged tree leaves out (user deletions, shadowed). */
  readonly removed: readonly string[];
  readonly conflicts: readonly EtcConflict[];
}

export interface EtcMergeInput {
  readonly oldDefault: EtcTree;
  readonly newDefault: EtcTree;
  readonly current: EtcTree;
}

function sameXattrs(a: readonly Xattr[], b: readonly Xattr[]): boolean {
  if (a.length !== b.length) return false;
  const key = (x: Xattr): string => `${x.name}=${x.value.toString('base64')}`;
  const as = a.map(key).sort();
  const bs = b.map(key).sort();
  return as.every((v, i) => v === bs[i]);
}

/** Equal as far as a user or an image can tell: kind, bytes, target and every piece of metadata. */
export function sameNode(a: EtcNode | undefined, b: EtcNode | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.kind !== b.kind || a.uid !== b.uid || a.gid !== b.gid) return false;
  switch (a.kind) {
    case 'file': {
      const f = b as EtcFile;
      return a.contentId === f.contentId && a.mode === f.mode && sameXattrs(a.xattrs, f.xattrs);
    }
    case 'symlink':
      return a.target === (b as EtcSymlink).target;
    case 'dir': {
      const d = b as EtcDir;
      return a.mode === d.mode && sameXattrs(a.xattrs, d.xattrs);
    }
  }
}

export const ETC_ROOT = '';

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? ETC_ROOT : path.slice(0, slash);
}

function checkPath(path: string, tree: string): void {
  const bad =
    path !== ETC_ROOT && (path.startsWith('/') || path.endsWith('/') || path.split('/').some((p) => p === '' || p === '.' || p === '..'));
  invariant(!bad, `etc merge: ${tree} tree has a malformed path ${JSON.stringify(path)}`);
}

/** Mark `path`'s strict ancestors (up to and including the root) in `set`. */
function markAncestors(set: Set<string>, path: string): void {
  let p = path;
  while (p !== ETC_ROOT) {
    p = parentOf(p);
    if (set.has(p)) return;
    set.add(p);
  }
}

export function planEtcMerge(input: EtcMergeInput): EtcMergePlan {
  const { oldDefault: O, newDefault: N, current: C } = input;
  const children = new Map<string, string[]>();
  const all = new Set<string>();
  for (const [name, tree] of [
    ['oldDefault', O],
    ['newDefault', N],
    ['current', C],
  ] as const) {
    for (const path of tree.keys()) {
      checkPath(path, name);
      const parent = parentOf(path);
      invariant(
        path === ETC_ROOT || (parent === ETC_ROOT && !tree.has(ETC_ROOT)) || tree.get(parent)?.kind === 'dir',
        `etc merge: ${name} tree has ${path} but no directory ${parent}`,
      );
      all.add(path);
    }
  }
  for (const path of all) {
    if (path === ETC_ROOT) continue;
    const parent = parentOf(path);
    let list = children.get(parent);
    if (!list) children.set(parent, (list = []));
    list.push(path);
  }
  for (const list of children.values()) list.sort();

  // Paths below which the image changed something, and below which the user has content of
  // their own (changed or added nodes) that must survive.
  const imageTouched = new Set<string>();
  const userContentBelow = new Set<string>();
  for (const path of all) {
    if (!sameNode(O.get(path), N.get(path))) {
      imageTouched.add(path);
      markAncestors(imageTouched, path);
    }
    const c = C.get(path);
    if (c !== undefined && !sameNode(O.get(path), c)) markAncestors(userContentBelow, path);
  }

  const entries: PlannedEntry[] = [];
  const conflicts: EtcConflict[] = [];
  const kept = new Set<string>();

  const conflict = (path: string, kind: EtcConflictKind, keptWhat: 'local' | 'deleted'): void => {
    conflicts.push({ path, kind, kept: keptWhat, local: C.get(path)?.kind ?? null, image: N.get(path)?.kind ?? null });
  };
  const take = (path: string, source: EtcSource): EtcNode => {
    const node = (source === 'current' ? C : N).get(path);
    invariant(node !== undefined, `etc merge: ${source} has no node at ${path}`);
    entries.push({ path, source, node });
    kept.add(path);
    return node;
  };

  /** Decide `path`; returns whether the result is a directory (so its children are walked). */
  const decide = (path: string): boolean => {
    const o = O.get(path);
    const n = N.get(path);
    const c = C.get(path);

    if (c === undefined && o === undefined) {
      // Nothing local: the image decides.
      return n !== undefined && take(path, 'newDefault').kind === 'dir';
    }
    if (c === undefined) {
      // The user deleted it. The image's subtree is hidden, so any image change there is lost.
      if (imageTouched.has(path) && n !== undefined) conflict(path, 'local-removed', 'deleted');
      return false;
    }
    if (o === undefined) {
      // The user added it.
      if (n !== undefined && !sameNode(c, n)) conflict(path, c.kind === n.kind ? 'both-added' : 'type', 'local');
      return take(path, 'current').kind === 'dir';
    }
    if (sameNode(o, c)) {
      // Untouched: follow the image, unless the image drops a directory that holds user content.
      if (c.kind === 'dir' && n?.kind !== 'dir' && userContentBelow.has(path)) {
        if (n !== undefined) conflict(path, 'type', 'local');
        take(path, 'current');
        return true;
      }
      return n !== undefined && take(path, 'newDefault').kind === 'dir';
    }
    // The user changed it.
    if (n === undefined) {
      conflict(path, 'image-removed', 'local');
    } else if (!sameNode(n, c)) {
      const bothDirs = c.kind === 'dir' && n.kind === 'dir';
      // A kept directory only hides the image's metadata; a kept non-directory hides its subtree.
      const imageChanged = bothDirs ? !sameNode(o, n) : imageTouched.has(path);
      if (imageChanged) conflict(path, c.kind === n.kind ? 'both-modified' : 'type', 'local');
    }
    return take(path, 'current').kind === 'dir';
  };

  const walk = (path: string): void => {
    if (!decide(path)) return;
    for (const child of children.get(path) ?? []) walk(child);
  };
  if (all.has(ETC_ROOT)) {
    walk(ETC_ROOT);
    invariant(entries[0]?.path === ETC_ROOT && entries[0].node.kind === 'dir', 'etc merge: /etc itself must stay a directory');
  } else {
    for (const child of children.get(ETC_ROOT) ?? []) walk(child);
  }

  const removed = [...N.keys()].filter((p) => !kept.has(p)).sort();
  return { entries, removed, conflicts };
}

function kindWord(kind: EtcNodeKind | null): string {
  return kind === null ? 'nothing' : kind === 'dir' ? 'directory' : kind;
}

/** One line per conflict, for the journal and `bootc status` ("user version kept"). */
export function describeEtcConflict(c: EtcConflict): string {
  const path = c.path === ETC_ROOT ? '/etc' : `/etc/${c.path}`;
  switch (c.kind) {
    case 'both-modified':
      return `${path}: changed locally and in the new image; local version kept`;
    case 'both-added':
      return `${path}: created locally and by the new image; local version kept`;
    case 'type':
      return `${path}: local ${kindWord(c.local)} where the new image has a ${kindWord(c.image)}; local version kept`;
    case 'image-removed':
      return `${path}: changed locally, removed from the new image; local version kept`;
    case 'local-removed':
      return `${path}: deleted locally, changed in the new image; stays deleted`;
  }
}
