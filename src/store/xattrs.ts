/**
 * Extended attributes on store objects and checked-out entries.
 *
 * Node has no setxattr/getxattr. Rather than a native addon (npm 11 blocks install scripts,
 * and a compiled module would have to match every Node the tool runs on), the store batches:
 * all attributes of one layer import or one checkout go into a single file in
 * `getfattr --dump` format, applied by ONE `setfattr -h --restore=FILE` process (Debian
 * `attr`). Files with attributes are rare (capabilities on a few binaries, some ACLs), so a
 * process per batch costs milliseconds, and `-h` never follows a symlink. Reading back for
 * fsck is the mirror image: one `getfattr -R -d -m - -e base64` over the objects.
 *
 * POSIX ACLs also live in the mode: the kernel keeps the group bits equal to the ACL mask
 * and stores no xattr at all for an ACL equivalent to the mode. `normaliseAclMode` applies
 * the same rule up front, so the id computed at import is the one fsck recomputes.
 */
import { writeFile, rm } from 'node:fs/promises';
import { run } from '../core/exec.js';
import type { Xattr } from './object-id.js';
import { HOST_ONLY_XATTRS } from './object-id.js';

export interface XattrTarget {
  /** Absolute path of the file, directory or symlink to set. */
  readonly path: string;
  readonly xattrs: readonly Xattr[];
}

/** getfattr's quoting of names: backslash and control bytes as \ooo (setfattr undoes it). */
function quoteDumpPath(path: string): string {
  const bytes = Buffer.from(path, 'utf8');
  let out = '';
  let plainFrom = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b < 0x20 || b === 0x7f || b === 0x5c) {
      out += bytes.toString('utf8', plainFrom, i) + '\\' + b.toString(8).padStart(3, '0');
      plainFrom = i + 1;
    }
  }
  return out + bytes.toString('utf8', plainFrom);
}

function unquoteDumpPath(quoted: string): string {
  if (!quoted.includes('\\')) return quoted;
  const raw = Buffer.from(quoted, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] as number;
    if (b === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.toString('latin1', i + 1, i + 4))) {
      out.push(Number.parseInt(raw.toString('latin1', i + 1, i + 4), 8));
      i += 3;
    } else {
      out.push(b);
    }
  }
  return Buffer.from(out).toString('utf8');
}

/** The `getfattr --dump -e base64` text that sets exactly these attributes. */
export function renderXattrDump(targets: readonly XattrTarget[]): string {
  const parts: string[] = [];
  for (const t of targets) {
    if (t.xattrs.length === 0) continue;
    parts.push(`# file: ${quoteDumpPath(t.path)}\n`);
    for (const x of t.xattrs) parts.push(`${x.name}=0s${x.value.toString('base64')}\n`);
    parts.push('\n');
  }
  return parts.join('');
}

/** Parse `getfattr --absolute-names -d -m - -e base64` output into path -> attributes. */
export function parseXattrDump(text: string): Map<string, Xattr[]> {
  const out = new Map<string, Xattr[]>();
  let current: Xattr[] | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = [];
      out.set(unquoteDumpPath(line.slice('# file: '.length)), current);
    } else if (line === '') {
      current = null;
    } else if (current) {
      const eq = line.indexOf('=');
      const name = eq < 0 ? line : line.slice(0, eq);
      const value = eq < 0 ? '' : line.slice(eq + 1);
      if (HOST_ONLY_XATTRS.has(name)) continue;
      current.push({ name, value: decodeDumpValue(value) });
    }
  }
  return out;
}

function decodeDumpValue(v: string): Buffer {
  if (v.startsWith('0s')) return Buffer.from(v.slice(2), 'base64');
  if (v.startsWith('0x')) return Buffer.from(v.slice(2), 'hex');
  if (v.startsWith('"') && v.endsWith('"')) return Buffer.from(unquoteDumpPath(v.slice(1, -1)), 'utf8');
  return Buffer.from(v, 'utf8');
}

/** Apply attributes to many paths with one setfattr process. No-op when there are none. */
export async function applyXattrs(targets: readonly XattrTarget[], dumpFile: string, description: string): Promise<void> {
  const dump = renderXattrDump(targets);
  if (dump === '') return;
  await writeFile(dumpFile, dump, { mode: 0o600 });
  try {
    await run({
      description,
      argv: ['setfattr', '-h', `--restore=${dumpFile}`],
      hint: 'the filesystem must support extended attributes (ext4, xfs, btrfs do) and trusted.*/security.* need root',
    });
  } finally {
    await rm(dumpFile, { force: true });
  }
}

/** Read every attribute below `dir` (recursively) with one getfattr process. */
export async function readXattrsBelow(dir: string, description: string): Promise<Map<string, Xattr[]>> {
  const result = await run({
    description,
    argv: ['getfattr', '--absolute-names', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'base64', dir],
  });
  return parseXattrDump(result.stdout);
}

const ACL_ACCESS = 'system.posix_acl_access';
const ACL_DEFAULT = 'system.posix_acl_default';
const ACL_TAG = { USER_OBJ: 0x01, USER: 0x02, GROUP_OBJ: 0x04, GROUP: 0x08, MASK: 0x10, OTHER: 0x20 } as const;

/**
 * What the kernel will make of (mode, xattrs) on an inode of the given kind: an access ACL
 * sets the owner/group(mask)/other bits, an ACL with only the three base entries is folded
 * into the mode and not stored, and a default ACL exists on directories only.
 */
export function normaliseAclMode(
  mode: number,
  xattrs: readonly Xattr[],
  isDirectory: boolean,
): { mode: number; xattrs: Xattr[] } {
  let out = xattrs.filter((x) => isDirectory || x.name !== ACL_DEFAULT);
  const acl = out.find((x) => x.name === ACL_ACCESS);
  if (!acl) return { mode, xattrs: out };
  const v = acl.value;
  if (v.length < 4 || (v.length - 4) % 8 !== 0) return { mode, xattrs: out };
  let user = -1;
  let group = -1;
  let mask = -1;
  let other = -1;
  let extended = false;
  for (let off = 4; off < v.length; off += 8) {
    const tag = v.readUInt16LE(off);
    const perm = v.readUInt16LE(off + 2) & 7;
    if (tag === ACL_TAG.USER_OBJ) user = perm;
    else if (tag === ACL_TAG.GROUP_OBJ) group = perm;
    else if (tag === ACL_TAG.MASK) mask = perm;
    else if (tag === ACL_TAG.OTHER) other = perm;
    else if (tag === ACL_TAG.USER || tag === ACL_TAG.GROUP) extended = true;
  }
  if (user < 0 || group < 0 || other < 0) return { mode, xattrs: out };
  const groupBits = mask >= 0 ? mask : group;
  const newMode = (mode & ~0o777) | (user << 6) | (groupBits << 3) | other;
  if (!extended && mask < 0) out = out.filter((x) => x.name !== ACL_ACCESS);
  return { mode: newMode, xattrs: out };
}
