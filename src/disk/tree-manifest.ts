/**
 * A manifest of a staged tree: one line per entry, in the order a depth-first walk with
 * sorted names visits them, saying everything a filesystem built from the tree keeps of it
 * (type, content identity, mode, owner, mtime, xattrs). Two manifests of two trees are
 * compared line by line, in one pass, to find what a filesystem built from the first needs
 * to become the second's (disk/ext4-update.ts).
 *
 *   bootc-tree-manifest 1
 *   <path>\t<type>\t<identity>\t<mode>\t<uid>\t<gid>\t<mtime s>\t<xattrs>
 *
 *   path      '/' for the root, '/a/b' below; compared component by component
 *   type      d f l c b p s
 *   identity  a file, symlink or node with more than one link: `i<ino>.<birth ns>.…`, the
 *             inode with its size and metadata (every name of it has the same identity,
 *             and a filesystem built by mke2fs -d gives them one inode too); a file with
 *             one link: `h<sha256>`;
 *             a symlink: `t<target>`; a device: `r<major>:<minor>`; else `-`
 *   xattrs    sha256 of the attributes (names and values), or `-`
 *
 * Store objects are never changed in place (store/object-writer.ts replaces by rename), so
 * an inode number with its birth time names one content for as long as the store keeps it.
 *
 * One name may differ between builds without the tree changing: the deployment's id (it
 * carries the manifest digest). `alias` writes it as `@` in one directory, so the
 * deployment's files compare by their path below it.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, writeSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { Xattr } from '../store/object-id.js';
import { readXattrsBelow } from '../store/xattrs.js';
import { withContext } from '../core/errors.js';
import { sha256OfFileSync } from '../core/file-hash.js';

export const MANIFEST_HEADER = 'bootc-tree-manifest 1';

/** A name the manifest writes as `@` (plus what follows it) in one directory. */
export interface ManifestAlias {
  /** Manifest path of the directory, e.g. `/bootc/deploy/default`. */
  dir: string;
  /** The name replaced: itself and `<name>.<suffix>`. */
  name: string;
}

export interface ManifestEntry {
  path: string;
  type: 'd' | 'f' | 'l' | 'c' | 'b' | 'p' | 's';
  identity: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: string;
}

/** Why a tree cannot be described (then a filesystem of it is only ever built whole). */
export class UnmanifestableTree extends Error {}

/** Names a manifest line, and a debugfs script, can carry: no control characters. */
const PLAIN_NAME = /^[^\u0000-\u001f\u007f/]+$/;

function typeOf(st: BigIntStats): ManifestEntry['type'] {
  if (st.isDirectory()) return 'd';
  if (st.isFile()) return 'f';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return 's';
}

export function xattrDigest(xattrs: readonly Xattr[] | undefined): string {
  if (!xattrs || xattrs.length === 0) return '-';
  const hash = createHash('sha256');
  for (const x of [...xattrs].sort((a, b) => (a.name < b.name ? -1 : 1))) hash.update(`${x.name}=${x.value.toString('base64')}\n`);
  return hash.digest('hex');
}

export const formatEntry = (e: ManifestEntry): string =>
  `${e.path}\t${e.type}\t${e.identity}\t${e.mode.toString(8)}\t${e.uid}\t${e.gid}\t${e.mtime}\t${e.xattrs}`;

export function parseEntry(line: string): ManifestEntry {
  const f = line.split('\t');
  if (f.length !== 8) throw new UnmanifestableTree(`a manifest line has ${f.length} fields: ${line.slice(0, 200)}`);
  return {
    path: f[0]!,
    type: f[1] as ManifestEntry['type'],
    identity: f[2]!,
    mode: Number.parseInt(f[3]!, 8),
    uid: Number(f[4]),
    gid: Number(f[5]),
    mtime: Number(f[6]),
    xattrs: f[7]!,
  };
}

/** The path field of a manifest line, without splitting the rest. */
export const pathOfLine = (line: string): string => line.slice(0, line.indexOf('\t'));

/** Manifest order: component by component, so `/` sorts before every other character. */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === 0x2f) return -1;
    if (y === 0x2f) return 1;
    return x - y;
  }
  return a.length - b.length;
}

const childPath = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);

/**
 * Writes the manifest of `root` to `file` (created, mode 0600), walking by synchronous
 * calls. Throws UnmanifestableTree for a name with a control character.
 */
export interface DescribedTree {
  /** Attributes of the entries that have any, by absolute path. */
  xattrs: Map<string, Xattr[]>;
  entries: number;
}

export async function writeTreeManifest(root: string, file: string, alias?: ManifestAlias): Promise<DescribedTree> {
  return withContext(`Describing ${root}`, async () => {
    const xattrsOf = await readXattrsBelow(root, `Reading the extended attributes below ${root}`);
    const out = openSync(file, 'wx', 0o600);
    try {
      // Lines go straight into a buffer: a line is garbage as soon as it is copied, and
      // 200k of them held until a flush would outlive the young generation.
      const buffer = Buffer.allocUnsafe(1 << 20);
      let used = 0;
      let entries = 0;
      const flush = (): void => {
        for (let at = 0; at < used; ) at += writeSync(out, buffer, at, used - at);
        used = 0;
      };
      const put = (line: string): void => {
        const bytes = Buffer.byteLength(line) + 1;
        if (used + bytes > buffer.length) flush();
        if (bytes > buffer.length) {
          writeSync(out, line + '\n');
          return;
        }
        used += buffer.write(line, used);
        buffer[used++] = 0x0a;
      };
      const emit = (line: string): void => {
        entries++;
        put(line);
      };
      put(MANIFEST_HEADER);
      const describe = (abs: string, path: string, st: BigIntStats): void => {
        const type = typeOf(st);
        let identity = '-';
        const mode = Number(st.mode & 0o7777n);
        const mtime = Number(st.mtimeMs / 1000n);
        const xattrs = xattrDigest(xattrsOf.get(abs));
        // The inode, and what it holds: the same inode changed in place is another one.
        if (type !== 'd' && st.nlink > 1n) identity = `i${st.ino}.${st.birthtimeNs}.${st.size}.${mode.toString(8)}.${st.uid}.${st.gid}.${mtime}.${xattrs.slice(0, 16)}`;
        else if (type === 'f') identity = `h${sha256OfFileSync(abs)}`;
        else if (type === 'l') identity = `t${readlinkSync(abs)}`;
        else if (type === 'c' || type === 'b') identity = `r${st.rdev >> 8n & 0xfffn}:${(st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n)}`;
        if (/[\t\n\r]/.test(identity)) throw new UnmanifestableTree(`${abs}: a symlink target with a tab or a line break`);
        emit(
          formatEntry({
            path,
            type,
            identity,
            mode,
            uid: Number(st.uid),
            gid: Number(st.gid),
            mtime,
            xattrs,
          }),
        );
      };
      const walk = (abs: string, path: string): void => {
        const names = readdirSync(abs).map((name) => {
          if (!PLAIN_NAME.test(name)) throw new UnmanifestableTree(`${join(abs, name)}: a name with a control character`);
          if (alias && path === alias.dir && name.startsWith('@')) throw new UnmanifestableTree(`${join(abs, name)}: a name the manifest uses for the deployment`);
          const shown = alias && path === alias.dir && (name === alias.name || name.startsWith(`${alias.name}.`)) ? '@' + name.slice(alias.name.length) : name;
          return { name, shown };
        });
        names.sort((a, b) => (a.shown < b.shown ? -1 : a.shown > b.shown ? 1 : 0));
        for (const { name, shown } of names) {
          const childAbs = join(abs, name);
          const st = lstatSync(childAbs, { bigint: true });
          describe(childAbs, childPath(path, shown), st);
          if (st.isDirectory()) walk(childAbs, childPath(path, shown));
        }
      };
      describe(root, '/', lstatSync(root, { bigint: true }));
      walk(root, '/');
      flush();
      return { xattrs: xattrsOf, entries };
    } finally {
      closeSync(out);
    }
  });
}

/**
 * The lines of a manifest file after its header, read 64 KiB at a time. Each line is a
 * string of its own, not a slice of a larger one: a line kept (a changed entry) must not
 * keep the chunk it came from.
 */
export function* manifestLines(file: string): Generator<string> {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 16);
    let carry: Buffer | null = null;
    let first = true;
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) {
      const data: Buffer = carry ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
      let start = 0;
      for (let end = data.indexOf(0x0a); end !== -1; end = data.indexOf(0x0a, start)) {
        const line = data.toString('utf8', start, end);
        start = end + 1;
        if (first) {
          if (line !== MANIFEST_HEADER) throw new UnmanifestableTree(`${file} is not a tree manifest`);
          first = false;
          continue;
        }
        yield line;
      }
      // A copy: the chunk is read into again.
      carry = start < data.length ? Buffer.from(data.subarray(start)) : null;
    }
    if (carry) throw new UnmanifestableTree(`${file} ends in the middle of a line`);
    if (first) throw new UnmanifestableTree(`${file} is empty`);
  } finally {
    closeSync(fd);
  }
}
