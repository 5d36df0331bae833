/**
 * The merged tree of an image: its layer indexes applied bottom to top, as an OCI runtime
 * would apply the layer tars, stored as `images/<manifest-digest>/tree.index`.
 *
 * Per layer (OCI image-spec "Applying Changesets"):
 * 1. whiteouts and opaque markers first, against the lower layers only (wherever they sit
 *    in the tar);
 * 2. then the layer's entries in tar order: an entry replaces what is at its path, except
 *    that a directory over a directory only takes the new metadata and keeps the children.
 *    A non-directory replacing a directory removes the whole lower subtree.
 * 3. Missing parents appear as directories 0755 root:root (as tar and container runtimes
 *    do). A parent that is a symlink is refused ("symlinked parent"): the checkout will never
 *    follow it, and an image that relies on writing through one is malformed or hostile.
 *
 * `mergeLayers` is pure; the loaders around it read and write index files.
 */
import { readFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { UserError, withContext } from '../core/errors.js';
import { baseNameOf, displayPath, ROOT_PATH } from './entry-path.js';
import {
  decodeTreeIndex,
  encodeIndexChunks,
  INDEX_FORMAT,
  INDEX_VERSION,
  type DirEntry,
  type LayerEntry,
  type TreeEntry,
  type TreeIndex,
  type TreeIndexHeader,
} from './index-format.js';
import { imageDir, storeLayout, treeIndexPath } from './layout.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { loadLayerIndex } from './layer-import.js';

export interface LayerInput {
  diffId: string;
  entries: readonly LayerEntry[];
}

interface Node {
  entry: TreeEntry;
  /** Present for directories only. */
  children?: Map<string, Node>;
}

const IMPLICIT_DIR = { mode: 0o755, uid: 0, gid: 0, xattrs: [] } as const;

function implicitDir(path: string): Node {
  return { entry: { kind: 'dir', path, ...IMPLICIT_DIR }, children: new Map() };
}

function splitPath(path: string): string[] {
  return path === ROOT_PATH ? [] : path.split('/');
}

/** The node at `path`, or undefined; never walks through a non-directory. */
function lookup(root: Node, path: string): Node | undefined {
  let node: Node | undefined = root;
  for (const part of splitPath(path)) {
    node = node.children?.get(part);
    if (!node) return undefined;
  }
  return node;
}

function parentFor(root: Node, path: string, diffId: string): Node {
  const parts = splitPath(path);
  let node = root;
  for (let i = 0; i < parts.length - 1; i++) {
    const name = parts[i] as string;
    const children = node.children as Map<string, Node>;
    let child = children.get(name);
    if (!child) {
      child = implicitDir(parts.slice(0, i + 1).join('/'));
      children.set(name, child);
    } else if (child.entry.kind === 'symlink') {
      throw new UserError(
        `Layer ${diffId} entry ${displayPath(path)} has a symlinked parent: ${displayPath(child.entry.path)} is a symlink to ${JSON.stringify(child.entry.target)} in a lower layer`,
        {
          hint: 'an image layer must not put files below a path that a lower layer made a symlink; rebuild the image so the directory is real, or write to the symlink target',
        },
      );
    } else if (child.entry.kind === 'file') {
      throw new UserError(
        `Layer ${diffId} entry ${displayPath(path)} lies below ${displayPath(child.entry.path)}, which is a regular file`,
        { hint: 'the layer must replace the file with a directory entry first; rebuild the image' },
      );
    }
    node = child;
  }
  return node;
}

/**
 * Layers applied one at a time, bottom first: only the merged tree and the layer being
 * applied need be in memory (what an upper layer replaces is dropped as it goes).
 */
export class TreeMerger {
  private readonly root = implicitDir(ROOT_PATH);

  add(layer: LayerInput): void {
    const root = this.root;
    for (const e of layer.entries) {
      if (e.kind === 'whiteout') {
        const parent = lookup(root, e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : ROOT_PATH);
        parent?.children?.delete(baseNameOf(e.path));
      } else if (e.kind === 'opaque') {
        const dir = lookup(root, e.path);
        dir?.children?.clear();
      }
    }
    for (const e of layer.entries) {
      if (e.kind === 'whiteout' || e.kind === 'opaque') continue;
      if (e.path === ROOT_PATH) {
        if (e.kind !== 'dir') {
          throw new UserError(`Layer ${layer.diffId} replaces the root directory with a ${e.kind}`, {
            hint: 'the layer is malformed; rebuild the image with a standard tool (podman, buildah, docker)',
          });
        }
        root.entry = e;
        continue;
      }
      const parent = parentFor(root, e.path, layer.diffId);
      const children = parent.children as Map<string, Node>;
      const name = baseNameOf(e.path);
      const existing = children.get(name);
      if (e.kind === 'dir') {
        if (existing?.children) existing.entry = e;
        else children.set(name, { entry: e, children: new Map() });
      } else {
        children.set(name, { entry: e });
      }
    }
  }

  /** The merged tree, parents before children, siblings by name. */
  entries(): TreeEntry[] {
    const out: TreeEntry[] = [];
    const walk = (node: Node): void => {
      out.push(node.entry);
      if (!node.children) return;
      const names = [...node.children.keys()].sort();
      for (const n of names) walk(node.children.get(n) as Node);
    };
    walk(this.root);
    return out;
  }
}

/** Apply layers (bottom first) and return the merged tree, parents before children. */
export function mergeLayers(layers: readonly LayerInput[]): TreeEntry[] {
  const merger = new TreeMerger();
  for (const layer of layers) merger.add(layer);
  return merger.entries();
}

export interface TreeSummary {
  dirs: number;
  files: number;
  symlinks: number;
  /** Sum of the sizes of all regular files (hardlinked copies counted each time). */
  fileBytes: number;
  /** Sum over distinct objects: what the image costs in the store. */
  objectBytes: number;
  objects: number;
}

export function summariseTree(entries: readonly TreeEntry[]): TreeSummary {
  const seen = new Set<string>();
  const s: TreeSummary = { dirs: 0, files: 0, symlinks: 0, fileBytes: 0, objectBytes: 0, objects: 0 };
  for (const e of entries) {
    if (e.kind === 'dir') s.dirs++;
    else if (e.kind === 'symlink') s.symlinks++;
    else {
      s.files++;
      s.fileBytes += e.size;
      if (!seen.has(e.object)) {
        seen.add(e.object);
        s.objects++;
        s.objectBytes += e.size;
      }
    }
  }
  return s;
}

/** The root directory entry of a tree (the first entry, by construction). */
export function rootEntryOf(tree: TreeIndex): DirEntry {
  const first = tree.entries[0];
  if (!first || first.kind !== 'dir' || first.path !== ROOT_PATH) {
    throw new UserError(`Tree index of ${tree.header.manifestDigest} has no root directory entry`, {
      hint: 'remove the image directory from the store and pull the image again',
    });
  }
  return first;
}

/**
 * Merge the image's imported layers (bottom first, by diff id) and store the tree as
 * `images/<manifest-digest>/tree.index`. Every layer must have been imported.
 */
export async function writeImageTree(root: string, manifestDigest: string, diffIds: readonly string[]): Promise<TreeIndex> {
  return withContext(`Building the tree of image ${manifestDigest}`, async () => {
    const layout = storeLayout(root);
    const merger = new TreeMerger();
    for (const diffId of diffIds) {
      const index = await loadLayerIndex(root, diffId).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new UserError(`Layer ${diffId} is not in the store`, { hint: 'import every layer of the image first' });
        }
        throw err;
      });
      merger.add({ diffId, entries: index.entries });
    }
    const header: TreeIndexHeader = {
      format: INDEX_FORMAT,
      version: INDEX_VERSION,
      kind: 'tree',
      manifestDigest,
      layers: [...diffIds],
    };
    const entries = merger.entries();
    await mkdir(imageDir(layout, manifestDigest), { recursive: true, mode: 0o755 });
    await writeFileAtomic(treeIndexPath(layout, manifestDigest), encodeIndexChunks(header, entries), 0o600);
    return { header, entries };
  });
}

export async function loadImageTree(root: string, manifestDigest: string): Promise<TreeIndex> {
  const path = treeIndexPath(storeLayout(root), manifestDigest);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(`Image ${manifestDigest} is not in the store under ${root}`, {
        hint: 'pull the image first',
      });
    }
    throw err;
  }
  return decodeTreeIndex(text, path);
}
