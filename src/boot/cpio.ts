/**
 * A writer for the "newc" cpio format (SVR4 without CRC), the one format the kernel unpacks
 * as an initramfs. Only what the addon initrd needs: directories, regular files, symlinks.
 * Every entry is owned by root and dated 0, so the same input always gives the same bytes.
 */
import { invariant } from '../core/errors.js';

export type CpioEntry =
  | { kind: 'directory'; path: string; mode?: number }
  | { kind: 'file'; path: string; content: string | Uint8Array; mode?: number }
  | { kind: 'symlink'; path: string; target: string };

const NEWC_MAGIC = '070701';
/** 6 magic bytes + 13 fields of 8 hex digits. */
const HEADER_BYTES = 110;
const TRAILER_NAME = 'TRAILER!!!';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

const DEFAULT_DIRECTORY_MODE = 0o755;
const DEFAULT_FILE_MODE = 0o644;
/** Symlink permissions are ignored by Linux; 0777 is what every tool writes. */
const SYMLINK_MODE = 0o777;

const padTo4 = (n: number): number => (4 - (n % 4)) % 4;

function hex8(value: number): string {
  invariant(Number.isInteger(value) && value >= 0 && value <= 0xffffffff, `cpio field out of range: ${value}`);
  return value.toString(16).padStart(8, '0');
}

function checkPath(path: string): void {
  invariant(
    path.length > 0 && !path.startsWith('/') && !path.endsWith('/') && !path.split('/').some((p) => p === '' || p === '.' || p === '..'),
    `cpio entry path must be relative and normalised: ${JSON.stringify(path)}`,
  );
}

interface RawEntry {
  name: string;
  mode: number;
  nlink: number;
  data: Uint8Array;
}

function header(ino: number, entry: RawEntry, nameBytes: number): string {
  const fields = [
    ino,
    entry.mode,
    0, // uid
    0, // gid
    entry.nlink,
    0, // mtime
    entry.data.length,
    0, // devmajor
    0, // devminor
    0, // rdevmajor
    0, // rdevminor
    nameBytes,
    0, // check (unused by newc)
  ];
  return NEWC_MAGIC + fields.map(hex8).join('');
}

function toRaw(entry: CpioEntry): RawEntry {
  checkPath(entry.path);
  const encoder = new TextEncoder();
  switch (entry.kind) {
    case 'directory':
      return { name: entry.path, mode: S_IFDIR | (entry.mode ?? DEFAULT_DIRECTORY_MODE), nlink: 2, data: new Uint8Array() };
    case 'file':
      return {
        name: entry.path,
        mode: S_IFREG | (entry.mode ?? DEFAULT_FILE_MODE),
        nlink: 1,
        data: typeof entry.content === 'string' ? encoder.encode(entry.content) : entry.content,
      };
    case 'symlink':
      invariant(entry.target.length > 0, `cpio symlink ${entry.path} has an empty target`);
      return { name: entry.path, mode: S_IFLNK | SYMLINK_MODE, nlink: 1, data: encoder.encode(entry.target) };
  }
}

/**
 * The archive, trailer included. Parents must come before their children: the kernel does
 * not create missing directories when it unpacks an initramfs.
 */
export function writeNewcCpio(entries: readonly CpioEntry[]): Uint8Array {
  const encoder = new TextEncoder();
  const seen = new Set<string>();
  const chunks: Uint8Array[] = [];
  let ino = 1;
  const append = (raw: RawEntry): void => {
    const name = encoder.encode(raw.name + '\0');
    chunks.push(encoder.encode(header(ino++, raw, name.length)), name, new Uint8Array(padTo4(HEADER_BYTES + name.length)));
    chunks.push(raw.data, new Uint8Array(padTo4(raw.data.length)));
  };
  for (const entry of entries) {
    const raw = toRaw(entry);
    invariant(!seen.has(raw.name), `cpio entry ${raw.name} appears twice`);
    const parent = raw.name.includes('/') ? raw.name.slice(0, raw.name.lastIndexOf('/')) : null;
    invariant(parent === null || seen.has(parent), `cpio entry ${raw.name} comes before its directory ${parent}`);
    seen.add(raw.name);
    append(raw);
  }
  append({ name: TRAILER_NAME, mode: 0, nlink: 1, data: new Uint8Array() });
  return concatBytes(chunks);
}

function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
