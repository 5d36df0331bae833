/**
 * An index of the regular files inside a tar archive (name → byte range), built by reading
 * only the 512-byte headers and seeking over the data. oci-archive and docker-archive files
 * are read through it in place: no extraction to a temp directory, so an archive on
 * read-only installation media costs no scratch space and no copy.
 *
 * Understands ustar (with the name prefix field), PAX extended headers (`path`, `size`), GNU
 * long names, and links between entries (a `docker save` archive links repeated layers).
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { UserError } from '../core/errors.js';

const BLOCK = 512;

export interface TarEntry {
  /** Byte offset of the entry's data in the archive. */
  offset: number;
  size: number;
}

/** One parsed header, before PAX / GNU long-name overrides are applied. */
export interface TarHeader {
  name: string;
  size: number;
  type: string;
  linkName: string;
}

function cString(block: Uint8Array, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const nul = field.indexOf(0);
  return Buffer.from(nul === -1 ? field : field.subarray(0, nul)).toString('utf8');
}

function numeric(block: Uint8Array, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  // GNU base-256 for values too large for octal: high bit of the first byte set.
  if ((field[0]! & 0x80) !== 0) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = cString(block, start, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(block: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === numeric(block, 148, 8);
}

/** Parse one header block; null for an all-zero (end of archive) block. */
export function parseTarHeader(block: Uint8Array): TarHeader | null {
  if (block.length !== BLOCK) throw new Error(`a tar header is ${BLOCK} bytes, got ${block.length}`);
  if (block.every((b) => b === 0)) return null;
  if (!checksumOk(block)) throw new Error('bad tar header checksum');
  let name = cString(block, 0, 100);
  const magic = cString(block, 257, 6);
  if (magic.startsWith('ustar')) {
    const prefix = cString(block, 345, 155);
    if (prefix !== '' && magic === 'ustar') name = `${prefix}/${name}`;
  }
  return { name, size: numeric(block, 124, 12), type: String.fromCharCode(block[156]!) || '0', linkName: cString(block, 157, 100) };
}

/** PAX records: `"<len> key=value\n"` repeated. */
export function parsePaxRecords(data: Uint8Array): Map<string, string> {
  const records = new Map<string, string>();
  const text = Buffer.from(data);
  let pos = 0;
  while (pos < text.length) {
    const space = text.indexOf(0x20, pos);
    if (space === -1) break;
    const length = parseInt(text.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = text.subarray(space + 1, pos + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq !== -1) records.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return records;
}

export function normalizeTarPath(name: string): string {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

function resolveLink(entryName: string, target: string, symbolic: boolean): string {
  if (!symbolic || target.startsWith('/')) return normalizeTarPath(target);
  const dir = entryName.includes('/') ? entryName.slice(0, entryName.lastIndexOf('/')) : '';
  return normalizeTarPath(`${dir}/${target}`);
}

/** A tar archive opened for random access to its files. */
export class TarIndex {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly entries: Map<string, TarEntry>,
  ) {}

  static async open(path: string, what: string): Promise<TarIndex> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new UserError(`${what} ${path} cannot be opened: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, {
        hint: 'check the path in the image reference',
      });
    }
    try {
      return new TarIndex(path, handle, await scan(handle, path, what));
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  get(name: string): TarEntry | undefined {
    return this.entries.get(normalizeTarPath(name));
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  async read(entry: TarEntry): Promise<Buffer> {
    const buffer = Buffer.alloc(entry.size);
    const { bytesRead } = await this.handle.read(buffer, 0, entry.size, entry.offset);
    if (bytesRead !== entry.size) throw new UserError(`${this.path} is truncated`, { hint: 'copy the archive again' });
    return buffer;
  }

  /**
   * A stream of an entry's bytes from `start`. Each stream opens the file anew: streams that
   * share one FileHandle close it for each other when one of them is destroyed.
   */
  stream(entry: TarEntry, start: number = 0, signal?: AbortSignal): NodeJS.ReadableStream {
    if (start >= entry.size) return Readable.from([]);
    return createReadStream(this.path, {
      start: entry.offset + start,
      end: entry.offset + entry.size - 1,
      highWaterMark: 1 << 20,
      ...(signal ? { signal } : {}),
    });
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

async function scan(handle: FileHandle, path: string, what: string): Promise<Map<string, TarEntry>> {
  const damaged = (detail: string): UserError =>
    new UserError(`${what} ${path} is not a valid tar archive: ${detail}`, { hint: 'check that the file is complete and really is an image archive' });
  const fileSize = (await handle.stat()).size;
  const entries = new Map<string, TarEntry>();
  const links: Array<{ name: string; target: string }> = [];
  const block = Buffer.alloc(BLOCK);
  let pos = 0;
  let paxPath: string | undefined;
  let paxSize: number | undefined;
  let longName: string | undefined;
  while (pos + BLOCK <= fileSize) {
    const { bytesRead } = await handle.read(block, 0, BLOCK, pos);
    if (bytesRead !== BLOCK) throw damaged(`short read at byte ${pos}`);
    let header: TarHeader | null;
    try {
      header = parseTarHeader(block);
    } catch (err) {
      throw damaged(`${(err as Error).message} at byte ${pos}`);
    }
    if (header === null) break;
    const dataOffset = pos + BLOCK;
    const isMeta = header.type === 'x' || header.type === 'L' || header.type === 'g' || header.type === 'K';
    const size = isMeta ? header.size : (paxSize ?? header.size);
    if (dataOffset + size > fileSize) throw damaged(`entry "${header.name}" runs past the end of the file`);
    const readData = async (): Promise<Buffer> => {
      const data = Buffer.alloc(header.size);
      await handle.read(data, 0, header.size, dataOffset);
      return data;
    };
    if (header.type === 'x') {
      const records = parsePaxRecords(await readData());
      paxPath = records.get('path');
      const s = records.get('size');
      paxSize = s !== undefined ? Number(s) : undefined;
    } else if (header.type === 'L') {
      longName = cString(await readData(), 0, header.size);
    } else if (header.type !== 'g' && header.type !== 'K') {
      const name = normalizeTarPath(paxPath ?? longName ?? header.name);
      if (header.type === '0' || header.type === '\0' || header.type === '7') {
        entries.set(name, { offset: dataOffset, size });
      } else if (header.type === '1' || header.type === '2') {
        links.push({ name, target: resolveLink(name, header.linkName, header.type === '2') });
      }
      paxPath = undefined;
      paxSize = undefined;
      longName = undefined;
    }
    pos = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
  }
  for (const link of links) {
    const target = entries.get(link.target);
    if (target && !entries.has(link.name)) entries.set(link.name, target);
  }
  return entries;
}
