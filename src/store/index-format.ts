/**
 * The store's index files: the per-layer import result (`layers/<diff-id>.index`) and the
 * merged tree of an image (`images/<manifest-digest>/tree.index`). Both are JSON Lines:
 *
 *   line 1: a header object, `{"format":"bootc-store-index","version":1,"kind":"layer"|"tree",…}`
 *   then one compact JSON array per entry, tagged by its first element:
 *     ["d", path, mode, uid, gid, xattrs?]                    directory
 *     ["f", path, objectId, mode, uid, gid, size, xattrs?]    regular file (object in objects/)
 *     ["l", path, target, uid, gid, xattrs?]                  symbolic link (target verbatim)
 *     ["w", path]                                             whiteout: delete path from lower layers
 *     ["o", path]                                             opaque: clear the lower content of dir path
 *   xattrs, when present, is an object {name: base64 value}.
 *
 * Arrays rather than objects keep the index of a 20k-file image to a couple of MB and
 * parse in tens of milliseconds; paths are store paths (see entry-path.ts), root = "".
 * Layer indexes keep tar order (a later entry for the same path wins); a tree index is in
 * depth-first order with siblings sorted, so parents always come before their children and
 * whiteouts/opaque markers never appear.
 */
import { UserError } from '../core/errors.js';
import { isObjectId, type Xattr } from './object-id.js';

export interface DirEntry {
  readonly kind: 'dir';
  readonly path: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly xattrs: readonly Xattr[];
}

export interface FileEntry {
  readonly kind: 'file';
  readonly path: string;
  readonly object: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly xattrs: readonly Xattr[];
}

export interface SymlinkEntry {
  readonly kind: 'symlink';
  readonly path: string;
  readonly target: string;
  readonly uid: number;
  readonly gid: number;
  readonly xattrs: readonly Xattr[];
}

export interface WhiteoutEntry {
  readonly kind: 'whiteout';
  readonly path: string;
}

export interface OpaqueEntry {
  readonly kind: 'opaque';
  readonly path: string;
}

export type TreeEntry = DirEntry | FileEntry | SymlinkEntry;
export type LayerEntry = TreeEntry | WhiteoutEntry | OpaqueEntry;

export const INDEX_FORMAT = 'bootc-store-index';
export const INDEX_VERSION = 1;

/** What an import did; kept in the layer index so a cached import can report it too. */
export interface LayerImportStats {
  entries: number;
  files: number;
  /** Objects this import wrote (not already in the store). */
  objectsWritten: number;
  /** Content bytes of the objects this import wrote. */
  bytesWritten: number;
  /** Content bytes of every regular file in the layer. */
  bytesTotal: number;
  /** Device nodes, fifos and sockets, which the store does not keep. */
  skipped: number;
}

export interface LayerIndexHeader {
  format: typeof INDEX_FORMAT;
  version: typeof INDEX_VERSION;
  kind: 'layer';
  diffId: string;
  stats: LayerImportStats;
}

export interface TreeIndexHeader {
  format: typeof INDEX_FORMAT;
  version: typeof INDEX_VERSION;
  kind: 'tree';
  manifestDigest: string;
  /** The image's layers, bottom first, by diff id. */
  layers: string[];
}

export interface LayerIndex {
  header: LayerIndexHeader;
  entries: LayerEntry[];
}

export interface TreeIndex {
  header: TreeIndexHeader;
  entries: TreeEntry[];
}

type XattrJson = Record<string, string>;

function xattrsToJson(xattrs: readonly Xattr[]): XattrJson | undefined {
  if (xattrs.length === 0) return undefined;
  const out: XattrJson = {};
  for (const x of xattrs) out[x.name] = x.value.toString('base64');
  return out;
}

function xattrsFromJson(v: unknown, where: () => string): Xattr[] {
  if (v === undefined) return [];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corrupt(where(), 'xattrs is not an object');
  return Object.entries(v as Record<string, unknown>).map(([name, value]) => {
    if (typeof value !== 'string') throw corrupt(where(), `xattr ${name} is not base64 text`);
    return { name, value: Buffer.from(value, 'base64') };
  });
}

function withOptional(arr: unknown[], xattrs: readonly Xattr[]): unknown[] {
  const x = xattrsToJson(xattrs);
  if (x) arr.push(x);
  return arr;
}

export function encodeEntry(e: LayerEntry): string {
  switch (e.kind) {
    case 'dir':
      return JSON.stringify(withOptional(['d', e.path, e.mode, e.uid, e.gid], e.xattrs));
    case 'file':
      return JSON.stringify(withOptional(['f', e.path, e.object, e.mode, e.uid, e.gid, e.size], e.xattrs));
    case 'symlink':
      return JSON.stringify(withOptional(['l', e.path, e.target, e.uid, e.gid], e.xattrs));
    case 'whiteout':
      return JSON.stringify(['w', e.path]);
    case 'opaque':
      return JSON.stringify(['o', e.path]);
  }
}

function corrupt(where: string, why: string): UserError {
  return new UserError(`Store index ${where} is corrupt: ${why}`, {
    hint: 'remove the index file; the next pull re-imports the layer (or run `bootc internals fsck`)',
  });
}

function num(v: unknown, where: () => string, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw corrupt(where(), `${field} is not a count`);
  return v;
}

function str(v: unknown, where: () => string, field: string): string {
  if (typeof v !== 'string') throw corrupt(where(), `${field} is not a string`);
  return v;
}

export function decodeEntry(line: string, where: () => string): LayerEntry {
  let a: unknown;
  try {
    a = JSON.parse(line);
  } catch {
    throw corrupt(where(), 'a line is not JSON');
  }
  if (!Array.isArray(a)) throw corrupt(where(), 'an entry is not an array');
  const path = str(a[1], where, 'path');
  switch (a[0]) {
    case 'd':
      return {
        kind: 'dir',
        path,
        mode: num(a[2], where, 'mode'),
        uid: num(a[3], where, 'uid'),
        gid: num(a[4], where, 'gid'),
        xattrs: xattrsFromJson(a[5], where),
      };
    case 'f': {
      const object = str(a[2], where, 'object');
      if (!isObjectId(object)) throw corrupt(where(), `object id ${object} is malformed`);
      return {
        kind: 'file',
        path,
        object,
        mode: num(a[3], where, 'mode'),
        uid: num(a[4], where, 'uid'),
        gid: num(a[5], where, 'gid'),
        size: num(a[6], where, 'size'),
        xattrs: xattrsFromJson(a[7], where),
      };
    }
    case 'l':
      return {
        kind: 'symlink',
        path,
        target: str(a[2], where, 'target'),
        uid: num(a[3], where, 'uid'),
        gid: num(a[4], where, 'gid'),
        xattrs: xattrsFromJson(a[5], where),
      };
    case 'w':
      return { kind: 'whiteout', path };
    case 'o':
      return { kind: 'opaque', path };
    default:
      throw corrupt(where(), `unknown entry tag ${JSON.stringify(a[0])}`);
  }
}

/** About this many characters per chunk of encodeIndexChunks. */
const CHUNK_CHARS = 1 << 20;

/**
 * An index file's text in chunks of whole lines, so a tree of 100k entries is written
 * without first becoming one string (with its 100k line strings) beside the entries.
 */
export function* encodeIndexChunks(header: LayerIndexHeader | TreeIndexHeader, entries: readonly LayerEntry[]): Generator<string> {
  let lines = [JSON.stringify(header)];
  let chars = lines[0]!.length;
  for (const e of entries) {
    const line = encodeEntry(e);
    lines.push(line);
    chars += line.length + 1;
    if (chars >= CHUNK_CHARS) {
      yield lines.join('\n') + '\n';
      lines = [];
      chars = 0;
    }
  }
  if (lines.length > 0) yield lines.join('\n') + '\n';
}

export function encodeIndex(header: LayerIndexHeader | TreeIndexHeader, entries: readonly LayerEntry[]): string {
  return [...encodeIndexChunks(header, entries)].join('');
}

function decodeHeader(line: string | undefined, where: string): LayerIndexHeader | TreeIndexHeader {
  let h: unknown;
  try {
    h = JSON.parse(line ?? '');
  } catch {
    throw corrupt(where, 'the header line is not JSON');
  }
  const hh = h as Partial<LayerIndexHeader | TreeIndexHeader> | null;
  if (!hh || hh.format !== INDEX_FORMAT) throw corrupt(where, 'it is not a bootc store index');
  if (hh.version !== INDEX_VERSION) {
    throw new UserError(`Store index ${where} has version ${String(hh.version)}; this bootc reads version ${INDEX_VERSION}`, {
      hint: 'use the bootc that wrote this store, or remove the store so it is rebuilt',
    });
  }
  return hh as LayerIndexHeader | TreeIndexHeader;
}

function decodeBody(text: string, where: string): { header: LayerIndexHeader | TreeIndexHeader; entries: LayerEntry[] } {
  if (!text.endsWith('\n')) throw corrupt(where, 'it is truncated');
  const lines = text.split('\n');
  lines.pop();
  const header = decodeHeader(lines[0], where);
  const entries: LayerEntry[] = new Array<LayerEntry>(lines.length - 1);
  for (let i = 1; i < lines.length; i++) {
    entries[i - 1] = decodeEntry(lines[i] as string, () => `${where} (line ${i + 1})`);
  }
  return { header, entries };
}

/**
 * Only the header and the object ids of an index's file entries (added to `into`): what GC,
 * fsck and staging need, without an entry object per line beside the text.
 */
export function objectIdsOfIndex(text: string, where: string, kind: 'layer', into: Set<string>): LayerIndexHeader;
export function objectIdsOfIndex(text: string, where: string, kind: 'tree', into: Set<string>): TreeIndexHeader;
export function objectIdsOfIndex(text: string, where: string, kind: 'layer' | 'tree', into: Set<string>): LayerIndexHeader | TreeIndexHeader {
  if (!text.endsWith('\n')) throw corrupt(where, 'it is truncated');
  let start = text.indexOf('\n');
  const header = decodeHeader(text.slice(0, start), where);
  if (header.kind !== kind) throw corrupt(where, `it is not a ${kind} index`);
  for (let line = 2; start + 1 < text.length; line++) {
    const end = text.indexOf('\n', start + 1);
    let a: unknown;
    try {
      a = JSON.parse(text.slice(start + 1, end));
    } catch {
      throw corrupt(`${where} (line ${line})`, 'a line is not JSON');
    }
    if (!Array.isArray(a)) throw corrupt(`${where} (line ${line})`, 'an entry is not an array');
    if (a[0] === 'f') {
      if (typeof a[2] !== 'string' || !isObjectId(a[2])) throw corrupt(`${where} (line ${line})`, `object id ${String(a[2])} is malformed`);
      into.add(a[2]);
    }
    start = end;
  }
  return header;
}

export function decodeLayerIndex(text: string, where: string): LayerIndex {
  const { header, entries } = decodeBody(text, where);
  if (header.kind !== 'layer') throw corrupt(where, 'it is not a layer index');
  return { header, entries };
}

export function decodeTreeIndex(text: string, where: string): TreeIndex {
  const { header, entries } = decodeBody(text, where);
  if (header.kind !== 'tree') throw corrupt(where, 'it is not a tree index');
  for (const e of entries) {
    if (e.kind === 'whiteout' || e.kind === 'opaque') throw corrupt(where, `tree holds a ${e.kind} entry`);
  }
  return { header, entries: entries as TreeEntry[] };
}
