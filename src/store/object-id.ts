/**
 * The identity of a file object in the store. Two files share an object (and, in a hardlink
 * checkout, an inode) only when everything an inode carries agrees: content, permission
 * bits, owner, group and extended attributes. So the id hashes all of them; a file that
 * differs from another only in `security.capability` is a different object.
 *
 * Canonical serialisation (version 1), hashed with SHA-256; the id is the lowercase hex
 * digest. Numbers are ASCII decimal, except the mode which is 4 octal digits:
 *
 *   "bootc-object-v1\n"
 *   "mode=" <mode & 07777 as 4 octal digits> "\n"      (type is always "regular file")
 *   "uid=" <uid> "\n"
 *   "gid=" <gid> "\n"
 *   "size=" <content length in bytes> "\n"
 *   for each xattr, sorted by the bytes of its UTF-8 name:
 *     "xattr=" <name byte length> ":" <value byte length> "\n" <name bytes> <value bytes> "\n"
 *   "\n"                                               (end of header)
 *   <content bytes>
 *
 * Lengths before the variable parts make the encoding unambiguous whatever bytes a name or
 * value holds. The header comes first because a tar entry gives every header field before
 * its content: the id is computed in the same single pass that writes the object.
 * `security.selinux` is never part of an id (nor applied): labels are a property of the
 * host policy, not of the image, as upstream bootc computes them at install time.
 */
import { createHash, type Hash } from 'node:crypto';

/** An extended attribute: name (e.g. `security.capability`) and raw value. */
export interface Xattr {
  readonly name: string;
  readonly value: Buffer;
}

export interface ObjectMetadata {
  /** Permission bits including setuid/setgid/sticky (`mode & 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** Any order; sorted here. */
  readonly xattrs: readonly Xattr[];
}

export const OBJECT_ID_MAGIC = 'bootc-object-v1\n';

/** Attributes the store never records: they belong to the host, not the image. */
export const HOST_ONLY_XATTRS: ReadonlySet<string> = new Set(['security.selinux']);

export function sortXattrs(xattrs: readonly Xattr[]): Xattr[] {
  return [...xattrs].sort((a, b) => Buffer.compare(Buffer.from(a.name, 'utf8'), Buffer.from(b.name, 'utf8')));
}

/** The bytes hashed before an object's content. */
export function objectHeader(meta: ObjectMetadata): Buffer {
  const parts: Buffer[] = [
    Buffer.from(
      `${OBJECT_ID_MAGIC}mode=${(meta.mode & 0o7777).toString(8).padStart(4, '0')}\n` +
        `uid=${meta.uid}\ngid=${meta.gid}\nsize=${meta.size}\n`,
      'latin1',
    ),
  ];
  for (const x of sortXattrs(meta.xattrs)) {
    const name = Buffer.from(x.name, 'utf8');
    parts.push(Buffer.from(`xattr=${name.length}:${x.value.length}\n`, 'latin1'), name, x.value, NEWLINE);
  }
  parts.push(NEWLINE);
  return Buffer.concat(parts);
}

const NEWLINE = Buffer.from('\n', 'latin1');

/** A hash already fed the header: feed the content, then `digest('hex')` is the object id. */
export function startObjectHash(meta: ObjectMetadata): Hash {
  return createHash('sha256').update(objectHeader(meta));
}

/** The id of an object whose content is in memory. */
export function objectIdOf(meta: Omit<ObjectMetadata, 'size'>, content: Uint8Array): string {
  return startObjectHash({ ...meta, size: content.length }).update(content).digest('hex');
}

const OBJECT_ID_RE = /^[0-9a-f]{64}$/;

export function isObjectId(s: string): boolean {
  return OBJECT_ID_RE.test(s);
}
