/**
 * Is the image's initramfs systemd-based? Our prepare-root step (src/boot/prepare-root.ts)
 * is a systemd unit added to the initrd, as upstream bootc's is; an initramfs whose /init is
 * a shell script (initramfs-tools, dracut without its systemd module) never runs it and
 * boots the physical root instead of the deployment. Refusing such an image before the disk
 * is written beats a disk that boots into the wrong root.
 *
 * An initramfs file is what the kernel unpacks: zero or more uncompressed newc cpio
 * archives (early microcode, ACPI tables), each ending in a TRAILER!!! entry and zero
 * padding, then the main archive, compressed (gzip, zstd, xz, lzma, lz4, bzip2) or not.
 * Entries of later archives replace earlier ones of the same name, as when the kernel
 * unpacks them.
 *
 * Pure parts: the newc stream scanner and the verdict from the entries seen. I/O: reading
 * the uncompressed front of the file and decompressing the rest with the matching program
 * (Node 20 has no zstd, and one way for every format keeps this small).
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { UserError, withContext } from '../core/errors.js';
import { spawnStreaming } from '../core/exec.js';

// ---------------------------------------------------------------------------------------
// newc scanner (pure)

const NEWC_MAGICS = ['070701', '070702'] as const; // without and with checksums: same layout
/** 6 magic bytes + 13 fields of 8 hex digits. */
const HEADER_BYTES = 110;
const TRAILER_NAME = 'TRAILER!!!';
/** Longest symlink target we keep: PATH_MAX. */
const SYMLINK_TARGET_MAX = 4096;
/** PATH_MAX, with the name's NUL. */
const NAME_MAX_BYTES = 4096;
/** Enough of a regular file to tell a script (`#!`) from a program (ELF). */
const FILE_HEAD_BYTES = 4;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export type CpioEntryKind = 'file' | 'symlink' | 'other';

export interface ScannedCpioEntry {
  /** Normalised: no leading `/` or `./`. */
  name: string;
  kind: CpioEntryKind;
  mode: number;
  ino: number;
  /** Counted from 0 for the first archive the scanner saw; inode numbers are per archive. */
  archive: number;
  size: number;
  /** A symlink's target; a regular file's first bytes. */
  head: Uint8Array;
}

/** The bytes are not a newc cpio stream the kernel would unpack. */
export class CpioFormatError extends Error {
  override readonly name = 'CpioFormatError';
}

const padTo4 = (n: number): number => (4 - (n % 4)) % 4;

function normaliseName(name: string): string {
  let n = name;
  for (;;) {
    if (n.startsWith('/')) n = n.slice(1);
    else if (n.startsWith('./')) n = n.slice(2);
    else return n === '.' ? '' : n;
  }
}

function kindOf(mode: number): CpioEntryKind {
  const type = mode & S_IFMT;
  return type === S_IFREG ? 'file' : type === S_IFLNK ? 'symlink' : 'other';
}

interface Header {
  ino: number;
  mode: number;
  size: number;
  nameSize: number;
}

function parseHeader(bytes: Uint8Array, at: number): Header {
  const text = Buffer.from(bytes.subarray(0, HEADER_BYTES)).toString('latin1');
  const field = (i: number): number => {
    const hex = text.slice(6 + i * 8, 14 + i * 8);
    if (!/^[0-9a-fA-F]{8}$/.test(hex)) throw new CpioFormatError(`bad cpio header field at byte ${at + 6 + i * 8}: ${JSON.stringify(hex)}`);
    return parseInt(hex, 16);
  };
  const header = { ino: field(0), mode: field(1), size: field(6), nameSize: field(11) };
  if (header.nameSize === 0) throw new CpioFormatError(`cpio entry at byte ${at} has an empty name`);
  // The kernel refuses longer names too; it also bounds what a damaged header makes us buffer.
  if (header.nameSize > NAME_MAX_BYTES) throw new CpioFormatError(`cpio entry at byte ${at} has a ${header.nameSize}-byte name`);
  return header;
}

const isNewcMagic = (bytes: Uint8Array): boolean =>
  NEWC_MAGICS.includes(Buffer.from(bytes.subarray(0, 6)).toString('latin1') as (typeof NEWC_MAGICS)[number]);

export type ScanState = 'more' | 'stopped';

/**
 * A push parser over one or more concatenated newc archives. Bytes that are neither zero
 * padding nor a cpio header after a complete archive (or at the very start) stop it:
 * `stoppedAt` then says where the non-cpio data begins (the compressed main archive, in an
 * initramfs file).
 */
export class NewcScanner {
  archives = 0;
  /** Where the scan stopped, counted from the first byte pushed; null while it runs. */
  stoppedAt: number | null = null;

  private phase: 'header' | 'data' | 'between' | 'stopped' = 'header';
  private atArchiveStart = true;
  /** Bytes before `pending`, all processed. */
  private consumed = 0;
  private pending: Uint8Array = new Uint8Array(0);
  private entry: (Header & { name: string }) | null = null;
  private dataLeft = 0;
  private padLeft = 0;
  private head: Uint8Array[] = [];
  private headLeft = 0;

  /**
   * `firstArchive` numbers this scanner's archives after those another scanner saw in the
   * same initramfs, so inode numbers (unique only within an archive) never collide.
   */
  constructor(
    private readonly onEntry: (entry: ScannedCpioEntry) => void,
    private readonly firstArchive = 0,
  ) {}

  push(chunk: Uint8Array): ScanState {
    let at = 0;
    while (at < chunk.length && this.phase !== 'stopped') {
      if (this.phase === 'between') {
        const from = at;
        while (at < chunk.length && chunk[at] === 0) at++;
        this.consumed += at - from;
        if (at < chunk.length) {
          this.phase = 'header';
          this.atArchiveStart = true;
        }
      } else if (this.phase === 'header') {
        at = this.takeHeader(chunk, at);
      } else {
        at = this.takeData(chunk, at);
      }
    }
    return this.phase === 'stopped' ? 'stopped' : 'more';
  }

  /** End of input: anything but a clean end after a trailer (or a stop) is a truncation. */
  finish(): void {
    if (this.phase === 'stopped' || this.phase === 'between') return;
    // Too short to hold a magic number: non-cpio data, like any other.
    if (this.phase === 'header' && this.atArchiveStart && this.pending.length < 6 && this.pending.length > 0) {
      this.stop(this.consumed);
      return;
    }
    if (this.archives === 0 && this.pending.length === 0 && this.consumed === 0) throw new CpioFormatError('it is empty');
    throw new CpioFormatError(`the cpio archive is truncated at byte ${this.consumed + this.pending.length}`);
  }

  private stop(at: number): void {
    this.phase = 'stopped';
    this.stoppedAt = at;
  }

  private append(chunk: Uint8Array, at: number, want: number): number {
    const take = Math.min(want - this.pending.length, chunk.length - at);
    const next = new Uint8Array(this.pending.length + take);
    next.set(this.pending, 0);
    next.set(chunk.subarray(at, at + take), this.pending.length);
    this.pending = next;
    return at + take;
  }

  private takeHeader(chunk: Uint8Array, at: number): number {
    const start = this.consumed;
    if (this.pending.length < 6) {
      at = this.append(chunk, at, 6);
      if (this.pending.length < 6) return at;
      if (!isNewcMagic(this.pending)) {
        if (this.atArchiveStart) {
          this.stop(start);
          return at;
        }
        throw new CpioFormatError(`no cpio header at byte ${start} (an entry's size is wrong, or the data is damaged)`);
      }
    }
    if (this.pending.length < HEADER_BYTES) {
      at = this.append(chunk, at, HEADER_BYTES);
      if (this.pending.length < HEADER_BYTES) return at;
    }
    const header = parseHeader(this.pending, start);
    const total = HEADER_BYTES + header.nameSize + padTo4(HEADER_BYTES + header.nameSize);
    at = this.append(chunk, at, total);
    if (this.pending.length < total) return at;
    const rawName = Buffer.from(this.pending.subarray(HEADER_BYTES, HEADER_BYTES + header.nameSize - 1)).toString('utf8');
    this.consumed += total;
    this.pending = new Uint8Array(0);
    this.atArchiveStart = false;
    this.entry = { ...header, name: rawName };
    this.dataLeft = header.size;
    this.padLeft = padTo4(header.size);
    const kind = kindOf(header.mode);
    this.headLeft = kind === 'symlink' ? Math.min(header.size, SYMLINK_TARGET_MAX) : kind === 'file' ? Math.min(header.size, FILE_HEAD_BYTES) : 0;
    this.head = [];
    this.phase = 'data';
    return this.takeData(chunk, at);
  }

  private takeData(chunk: Uint8Array, at: number): number {
    const entry = this.entry!;
    if (this.headLeft > 0 && at < chunk.length) {
      const take = Math.min(this.headLeft, chunk.length - at);
      this.head.push(chunk.slice(at, at + take));
      this.headLeft -= take;
    }
    const data = Math.min(this.dataLeft, chunk.length - at);
    this.dataLeft -= data;
    at += data;
    this.consumed += data;
    const pad = Math.min(this.padLeft, chunk.length - at);
    this.padLeft -= pad;
    at += pad;
    this.consumed += pad;
    if (this.dataLeft > 0 || this.padLeft > 0) return at;

    this.entry = null;
    this.phase = 'header';
    if (entry.name === TRAILER_NAME) {
      this.archives++;
      this.phase = 'between';
      this.atArchiveStart = true;
      return at;
    }
    this.onEntry({
      name: normaliseName(entry.name),
      kind: kindOf(entry.mode),
      mode: entry.mode,
      ino: entry.ino,
      archive: this.firstArchive + this.archives,
      size: entry.size,
      head: Buffer.concat(this.head),
    });
    return at;
  }
}

// ---------------------------------------------------------------------------------------
// the verdict (pure)

/** systemd's own binary in an initrd, with merged /usr or without. */
const SYSTEMD_BINARIES = ['usr/lib/systemd/systemd', 'lib/systemd/systemd'] as const;

export type InitramfsVerdict = { systemdBased: true } | { systemdBased: false; reason: string };

/**
 * What the kernel runs from an initramfs is /init (rdinit=); the initramfs is systemd-based
 * when that is systemd: a link to its binary (dracut, mkosi) or a hard link of it.
 */
export class InitramfsEntries {
  private readonly kept = new Map<string, ScannedCpioEntry>();

  add(entry: ScannedCpioEntry): void {
    if (entry.name === 'init' || (SYSTEMD_BINARIES as readonly string[]).includes(entry.name)) this.kept.set(entry.name, entry);
  }

  verdict(): InitramfsVerdict {
    const init = this.kept.get('init');
    const binaries = SYSTEMD_BINARIES.map((name) => this.kept.get(name)).filter((e) => e?.kind === 'file') as ScannedCpioEntry[];
    if (!init) return { systemdBased: false, reason: 'it has no /init' };
    if (init.kind === 'symlink') {
      const target = Buffer.from(init.head).toString('utf8');
      const resolved = normaliseName(target.replace(/^(\.\.?\/)+/, ''));
      if (!resolved.endsWith('/systemd')) return { systemdBased: false, reason: `its /init is a link to ${target}, not to systemd` };
      if (binaries.length === 0) return { systemdBased: false, reason: `its /init links to ${target}, but it holds no systemd binary` };
      return { systemdBased: true };
    }
    if (init.kind !== 'file') return { systemdBased: false, reason: 'its /init is not a program' };
    if (Buffer.from(init.head.subarray(0, 2)).toString('latin1') === '#!') {
      return { systemdBased: false, reason: 'its /init is a shell script' };
    }
    // newc stores hard links as entries sharing an inode number within one archive.
    if (binaries.some((b) => b.archive === init.archive && b.ino === init.ino)) return { systemdBased: true };
    return { systemdBased: false, reason: 'its /init is a program other than systemd' };
  }
}

// ---------------------------------------------------------------------------------------
// compression of the main archive (pure)

export type CompressionName = 'gzip' | 'zstd' | 'xz' | 'lzma' | 'lz4' | 'bzip2';

export interface Compression {
  name: CompressionName;
  /** Decompresses stdin to stdout. */
  argv: readonly [string, ...string[]];
}

const COMPRESSIONS: readonly (Compression & { magic: readonly number[] })[] = [
  { name: 'gzip', magic: [0x1f, 0x8b], argv: ['gzip', '-dc'] },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], argv: ['zstd', '-dc'] },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], argv: ['xz', '-dc'] },
  { name: 'lzma', magic: [0x5d, 0x00, 0x00], argv: ['xz', '-dc', '--format=lzma'] },
  // The legacy lz4 format is what the kernel's own initramfs tooling writes; frames also work.
  { name: 'lz4', magic: [0x02, 0x21, 0x4c, 0x18], argv: ['lz4', '-dc'] },
  { name: 'lz4', magic: [0x04, 0x22, 0x4d, 0x18], argv: ['lz4', '-dc'] },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], argv: ['bzip2', '-dc'] },
];

/** The compression whose magic starts `head`, or null. */
export function detectCompression(head: Uint8Array): Compression | null {
  const found = COMPRESSIONS.find((c) => c.magic.every((byte, i) => head[i] === byte));
  return found ? { name: found.name, argv: found.argv } : null;
}

// ---------------------------------------------------------------------------------------
// reading an initramfs file (I/O)

export interface InitramfsInspection {
  verdict: InitramfsVerdict;
  /** Uncompressed archives in front of the main one (microcode and the like). */
  earlyArchives: number;
  /** null: the whole file is uncompressed cpio. */
  compression: CompressionName | null;
}

const READ_CHUNK = 1 << 16;

/** Scans the uncompressed cpio archives at the front of the file. */
async function scanUncompressedFront(path: string, scanner: NewcScanner): Promise<void> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(READ_CHUNK);
    for (let position = 0; ; ) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      if (scanner.push(buffer.subarray(0, bytesRead)) === 'stopped') return;
    }
  } finally {
    await file.close();
  }
}

async function readBytesAt(path: string, position: number, length: number): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await file.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

const isEpipe = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === 'EPIPE';

/** Streams the file from `offset` through the decompressor into `scanner`. */
async function scanCompressed(path: string, offset: number, compression: Compression, scanner: NewcScanner): Promise<void> {
  const { child, done } = spawnStreaming({
    description: `Decompressing the initramfs (${compression.name})`,
    argv: compression.argv,
    hint: 'the initramfs is damaged; regenerate it in the image build',
  });
  const feeding = pipeline(createReadStream(path, { start: offset }), child.stdin!).then(
    () => null,
    (err: unknown) => err,
  );
  let finished = false;
  try {
    let streamError: unknown = null;
    try {
      for await (const chunk of child.stdout! as AsyncIterable<Buffer>) scanner.push(chunk);
    } catch (err) {
      streamError = err;
    }
    // Damaged cpio is the error to report, not the decompressor's SIGPIPE once we stop reading.
    if (streamError instanceof CpioFormatError) throw streamError;
    await done; // a missing program or a failed decompression is the error to report
    if (streamError !== null) throw streamError;
    const feedError = await feeding;
    if (feedError !== null && !isEpipe(feedError)) throw feedError;
    finished = true;
  } finally {
    if (!finished) {
      child.kill();
      await done.catch(() => undefined);
      await feeding;
    }
  }
}

/** Reads the whole initramfs and decides whether it is systemd-based. */
export async function inspectInitramfs(path: string): Promise<InitramfsInspection> {
  const entries = new InitramfsEntries();
  const front = new NewcScanner((e) => entries.add(e));
  await scanUncompressedFront(path, front);
  front.finish();
  if (front.stoppedAt === null) {
    return { verdict: entries.verdict(), earlyArchives: 0, compression: null };
  }
  const offset = front.stoppedAt;
  const head = await readBytesAt(path, offset, 8);
  const compression = detectCompression(head);
  if (!compression) {
    const where = offset === 0 ? 'it starts' : `after ${front.archives} uncompressed cpio archive(s), byte ${offset} starts`;
    throw new CpioFormatError(
      `${where} with bytes ${Buffer.from(head).toString('hex')}: neither a newc cpio archive nor gzip, zstd, xz, lzma, lz4 or bzip2 data`,
    );
  }
  const main = new NewcScanner((e) => entries.add(e), front.archives);
  await scanCompressed(path, offset, compression, main);
  main.finish();
  if (main.stoppedAt !== null) {
    throw new CpioFormatError(
      main.stoppedAt === 0
        ? `its ${compression.name} data does not decompress to a cpio archive`
        : `its ${compression.name} data holds something other than cpio at byte ${main.stoppedAt} after decompression`,
    );
  }
  return { verdict: entries.verdict(), earlyArchives: front.archives, compression: compression.name };
}

export interface InitramfsOwner {
  imageName: string;
  /** Where the file is in the image, for the message (the file read may be a store object). */
  pathInImage: string;
}

/** Refuses an image whose initramfs cannot run bootc's prepare-root unit. */
export async function checkSystemdInitramfs(path: string, owner: InitramfsOwner): Promise<void> {
  await withContext(`Checking the initramfs ${owner.pathInImage} of image ${owner.imageName}`, async () => {
    let inspection: InitramfsInspection;
    try {
      inspection = await inspectInitramfs(path);
    } catch (err) {
      if (!(err instanceof CpioFormatError)) throw err;
      throw new UserError(`the initramfs of image ${owner.imageName} (${owner.pathInImage}) cannot be unpacked: ${err.message}`, {
        hint: 'the file is damaged or not an initramfs; regenerate it in the image build (e.g. `dracut --force --kver <kver> /usr/lib/modules/<kver>/initramfs.img`)',
      });
    }
    if (!inspection.verdict.systemdBased) {
      throw new UserError(`the initramfs of image ${owner.imageName} is not systemd-based (${inspection.verdict.reason})`, {
        hint:
          "bootc's prepare-root runs as a systemd unit inside the initrd; build the initramfs with dracut and its systemd module " +
          '(on Debian: install dracut instead of initramfs-tools, then `dracut --force --kver <kver> /usr/lib/modules/<kver>/initramfs.img`)',
      });
    }
  });
}
