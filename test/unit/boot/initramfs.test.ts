import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNewcCpio, type CpioEntry } from '../../../src/boot/cpio.js';
import {
  checkSystemdInitramfs,
  CpioFormatError,
  detectCompression,
  InitramfsEntries,
  inspectInitramfs,
  NewcScanner,
  type ScannedCpioEntry,
} from '../../../src/boot/initramfs.js';
import { ContextError, ExternalCommandError, UserError, unwrapContext } from '../../../src/core/errors.js';
import { explainSkip, needsCommands } from '../../support/tier.js';
import { scriptInitrd, systemdInitrd } from '../../support/initrd.js';
import { testDir, suiteDir } from '../../support/temp-tree.js';

const microcode: CpioEntry[] = [
  { kind: 'directory', path: 'kernel' },
  { kind: 'directory', path: 'kernel/x86' },
  { kind: 'directory', path: 'kernel/x86/microcode' },
  { kind: 'file', path: 'kernel/x86/microcode/GenuineIntel.bin', content: new Uint8Array(5000).fill(0xab) },
];

function scanAll(bytes: Uint8Array, chunkSize: number): { entries: ScannedCpioEntry[]; scanner: NewcScanner } {
  const entries: ScannedCpioEntry[] = [];
  const scanner = new NewcScanner((e) => entries.push(e));
  for (let at = 0; at < bytes.length; at += chunkSize) {
    if (scanner.push(bytes.subarray(at, at + chunkSize)) === 'stopped') break;
  }
  return { entries, scanner };
}

const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

describe('newc scanner (pure)', () => {
  it('reports every entry with its kind, symlink target and file head, whatever the chunk size', () => {
    const bytes = writeNewcCpio(systemdInitrd);
    const whole = scanAll(bytes, bytes.length);
    for (const size of [1, 3, 7, 110, 111, 4096]) {
      const { entries, scanner } = scanAll(bytes, size);
      scanner.finish();
      expect(entries).toEqual(whole.entries);
      expect(scanner.archives).toBe(1);
      expect(scanner.stoppedAt).toBeNull();
    }
    const init = whole.entries.find((e) => e.name === 'init')!;
    expect(init.kind).toBe('symlink');
    expect(Buffer.from(init.head).toString()).toBe('usr/lib/systemd/systemd');
    const systemd = whole.entries.find((e) => e.name === 'usr/lib/systemd/systemd')!;
    expect(systemd.kind).toBe('file');
    expect(Buffer.from(systemd.head).toString('latin1')).toBe('\x7fELF');
    expect(whole.entries.map((e) => e.name)).toEqual(systemdInitrd.map((e) => e.path));
  });

  it('crosses zero padding into a second archive, numbering the archives', () => {
    const bytes = concat(writeNewcCpio(microcode), new Uint8Array(512), writeNewcCpio(systemdInitrd));
    for (const size of [1, 5, 1 << 16]) {
      const { entries, scanner } = scanAll(bytes, size);
      scanner.finish();
      expect(scanner.archives).toBe(2);
      expect(entries.find((e) => e.name === 'kernel/x86/microcode/GenuineIntel.bin')?.archive).toBe(0);
      expect(entries.find((e) => e.name === 'init')?.archive).toBe(1);
    }
  });

  it('stops where non-cpio data follows a complete archive, and at byte 0 when there is no cpio', () => {
    const early = writeNewcCpio(microcode);
    const gzipMagic = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    for (const size of [1, 9, 1 << 16]) {
      expect(scanAll(concat(early, new Uint8Array(8), gzipMagic), size).scanner.stoppedAt).toBe(early.length + 8);
      expect(scanAll(gzipMagic, size).scanner.stoppedAt).toBe(0);
    }
  });

  it('refuses a truncated archive, an empty input and a header in the middle of data', () => {
    const bytes = writeNewcCpio(systemdInitrd);
    const cut = scanAll(bytes.subarray(0, bytes.length - 20), 64).scanner;
    expect(() => cut.finish()).toThrow(CpioFormatError);
    expect(() => cut.finish()).toThrow(/truncated/);
    expect(() => new NewcScanner(() => undefined).finish()).toThrow(/empty/);
    // An entry whose size field lies: the next "header" lands in the middle of data.
    const lying = Buffer.from(bytes);
    const firstFile = lying.indexOf('usr/lib/systemd/systemd\0') - 110;
    lying.write('00000002', firstFile + 6 + 6 * 8, 'latin1');
    expect(() => scanAll(lying, 1 << 16)).toThrow(/no cpio header at byte/);
    const hugeName = Buffer.from(bytes);
    hugeName.write('7fffffff', 6 + 11 * 8, 'latin1');
    expect(() => scanAll(hugeName, 1 << 16)).toThrow(/cpio entry at byte 0 has a 2147483647-byte name/);
  });
});

describe('compression magic (pure)', () => {
  it.each([
    [[0x1f, 0x8b, 0x08], 'gzip'],
    [[0x28, 0xb5, 0x2f, 0xfd], 'zstd'],
    [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz'],
    [[0x5d, 0x00, 0x00, 0x80], 'lzma'],
    [[0x02, 0x21, 0x4c, 0x18], 'lz4'],
    [[0x04, 0x22, 0x4d, 0x18], 'lz4'],
    [[0x42, 0x5a, 0x68, 0x39], 'bzip2'],
  ])('%j is %s', (magic, name) => {
    expect(detectCompression(new Uint8Array(magic))?.name).toBe(name);
  });
  it('knows nothing else', () => {
    expect(detectCompression(new TextEncoder().encode('070701'))).toBeNull();
    expect(detectCompression(new Uint8Array([0x7f, 0x45, 0x4c, 0x46]))).toBeNull();
    expect(detectCompression(new Uint8Array([0x1f]))).toBeNull();
  });
});

describe('systemd-based verdict (pure)', () => {
  const entry = (e: Partial<ScannedCpioEntry> & { name: string }): ScannedCpioEntry => ({
    kind: 'file',
    mode: 0o100755,
    ino: 1,
    archive: 0,
    size: 0,
    head: new Uint8Array(),
    ...e,
  });
  const link = (name: string, target: string, archive = 0): ScannedCpioEntry =>
    entry({ name, kind: 'symlink', mode: 0o120777, head: new TextEncoder().encode(target), archive, ino: 9 });
  const systemd = entry({ name: 'usr/lib/systemd/systemd', ino: 5, head: new TextEncoder().encode('\x7fELF') });
  const verdictOf = (...entries: ScannedCpioEntry[]) => {
    const v = new InitramfsEntries();
    entries.forEach((e) => v.add(e));
    return v.verdict();
  };

  it('accepts /init linked to systemd (relative, absolute, non-merged /usr)', () => {
    expect(verdictOf(systemd, link('init', 'usr/lib/systemd/systemd'))).toEqual({ systemdBased: true });
    expect(verdictOf(link('init', '/usr/lib/systemd/systemd'), systemd)).toEqual({ systemdBased: true });
    expect(verdictOf(entry({ name: 'lib/systemd/systemd' }), link('init', '/lib/systemd/systemd'))).toEqual({ systemdBased: true });
  });

  it('accepts /init hard-linked to systemd, only within the same archive', () => {
    expect(verdictOf(entry({ name: 'init', ino: 5 }), systemd)).toEqual({ systemdBased: true });
    expect(verdictOf(entry({ name: 'init', ino: 5, archive: 1 }), systemd)).toMatchObject({ systemdBased: false });
  });

  it.each([
    { entries: [systemd], reason: 'it has no /init' },
    { entries: [systemd, entry({ name: 'init', head: new TextEncoder().encode('#!/b') })], reason: 'its /init is a shell script' },
    { entries: [systemd, link('init', 'bin/busybox')], reason: 'its /init is a link to bin/busybox, not to systemd' },
    { entries: [link('init', 'usr/lib/systemd/systemd')], reason: 'its /init links to usr/lib/systemd/systemd, but it holds no systemd binary' },
    { entries: [systemd, entry({ name: 'init', ino: 7, head: new TextEncoder().encode('\x7fELF') })], reason: 'its /init is a program other than systemd' },
    { entries: [systemd, entry({ name: 'init', kind: 'other', mode: 0o40755 })], reason: 'its /init is not a program' },
  ])('refuses: $reason', ({ entries, reason }) => {
    expect(verdictOf(...entries)).toEqual({ systemdBased: false, reason });
  });

  it('lets a later archive replace /init, as the kernel does', () => {
    const script = entry({ name: 'init', archive: 1, head: new TextEncoder().encode('#!/b') });
    expect(verdictOf(systemd, link('init', 'usr/lib/systemd/systemd'), script)).toMatchObject({ systemdBased: false });
    expect(verdictOf(script, systemd, link('init', 'usr/lib/systemd/systemd', 2))).toEqual({ systemdBased: true });
  });
});

const compressors = ['gzip', 'zstd', 'xz', 'lz4', 'bzip2'] as const;

describe.skipIf(explainSkip('unit', needsCommands(...compressors)))('initramfs files', () => {
  const dir = suiteDir('initramfs');
  const owner = { imageName: 'oci:/images:test', pathInImage: '/usr/lib/modules/6.1.0-test/initramfs.img' };

  const compress = (argv: string[], bytes: Uint8Array): Uint8Array => new Uint8Array(execFileSync(argv[0]!, argv.slice(1), { input: bytes, maxBuffer: 64 << 20 }));
  const file = (name: string, ...parts: Uint8Array[]): string => {
    const path = join(dir.path, name);
    writeFileSync(path, concat(...parts));
    return path;
  };
  const rootCause = async (promise: Promise<unknown>): Promise<unknown> => {
    try {
      await promise;
    } catch (err) {
      expect(err).toBeInstanceOf(ContextError);
      return unwrapContext(err).root;
    }
    throw new Error('expected a failure');
  };


  const formats: [string, string[] | null][] = [
    ['none', null],
    ['gzip', ['gzip', '-c']],
    ['zstd', ['zstd', '-c', '-q']],
    ['xz', ['xz', '-c', '--check=crc32']],
    ['lzma', ['xz', '-c', '--format=lzma']],
    ['lz4', ['lz4', '-c', '-l']],
    ['bzip2', ['bzip2', '-c']],
  ];

  it.each(formats)('reads a systemd initrd compressed with %s', async (name, argv) => {
    const cpio = writeNewcCpio(systemdInitrd);
    const path = file(`systemd-${name}.img`, argv ? compress(argv, cpio) : cpio);
    expect(await inspectInitramfs(path)).toEqual({ verdict: { systemdBased: true }, earlyArchives: 0, compression: argv ? name : null });
    await checkSystemdInitramfs(path, owner);
  });

  it('skips uncompressed early archives (microcode) in front of a zstd main archive', async () => {
    const path = file(
      'early.img',
      writeNewcCpio(microcode),
      writeNewcCpio([{ kind: 'directory', path: 'early2' }]),
      new Uint8Array(12),
      compress(['zstd', '-c', '-q'], writeNewcCpio(systemdInitrd)),
    );
    expect(await inspectInitramfs(path)).toEqual({ verdict: { systemdBased: true }, earlyArchives: 2, compression: 'zstd' });
  });

  it('refuses an initramfs-tools style initrd (gzip): says it is not systemd-based, and how to fix it', async () => {
    const path = file('script.img', writeNewcCpio(microcode), compress(['gzip', '-c'], writeNewcCpio(scriptInitrd)));
    const err = await rootCause(checkSystemdInitramfs(path, owner));
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe('the initramfs of image oci:/images:test is not systemd-based (its /init is a shell script)');
    expect((err as UserError).hint).toMatch(/dracut.*systemd module/);
    expect((err as UserError).hint).toContain('prepare-root');
  });

  it('refuses a file that is neither cpio nor compressed, naming its first bytes', async () => {
    const path = file('garbage.img', new TextEncoder().encode('MZ this is a PE file'));
    const err = await rootCause(checkSystemdInitramfs(path, owner));
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/^the initramfs of image oci:\/images:test \(\/usr\/lib\/modules\/6.1.0-test\/initramfs.img\) cannot be unpacked: it starts with bytes 4d5a/);
    const after = file('garbage-after.img', writeNewcCpio(microcode), new TextEncoder().encode('MZ!'));
    expect(String((await rootCause(checkSystemdInitramfs(after, owner)) as Error).message)).toMatch(/after 1 uncompressed cpio archive\(s\), byte \d+ starts with bytes 4d5a21/);
  });

  it('refuses compressed data that is not cpio, and a truncated compressed archive', async () => {
    const notCpio = file('not-cpio.img', compress(['gzip', '-c'], new TextEncoder().encode('just text, no cpio here')));
    expect(((await rootCause(checkSystemdInitramfs(notCpio, owner))) as Error).message).toMatch(/its gzip data does not decompress to a cpio archive/);
    const whole = compress(['zstd', '-c', '-q'], writeNewcCpio(systemdInitrd));
    const cut = file('cut.img', whole.subarray(0, whole.length - 10));
    expect(await rootCause(checkSystemdInitramfs(cut, owner))).toBeInstanceOf(ExternalCommandError);
  });

  it('reports damaged cpio inside compressed data as such, not as the decompressor dying of SIGPIPE', async () => {
    const bytes = Buffer.from(
      writeNewcCpio([...systemdInitrd, { kind: 'file', path: 'usr/lib/firmware.bin', content: new Uint8Array(randomBytes(4 << 20)) }]),
    );
    const firstFile = bytes.indexOf('usr/lib/systemd/systemd\0') - 110;
    bytes.write('00000002', firstFile + 6 + 6 * 8, 'latin1'); // its size field now lies
    const path = file('lying.img', compress(['zstd', '-c', '-q', '-1'], bytes));
    const err = await rootCause(checkSystemdInitramfs(path, owner));
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/cannot be unpacked: no cpio header at byte \d+/);
  });

  it('names the Debian package when the decompressor is not installed', async () => {
    const path = file('needs-zstd.img', compress(['zstd', '-c', '-q'], writeNewcCpio(systemdInitrd)));
    const empty = testDir('empty-path');
    const saved = process.env['PATH'];
    process.env['PATH'] = empty;
    let err: unknown;
    try {
      err = await rootCause(checkSystemdInitramfs(path, owner));
    } finally {
      process.env['PATH'] = saved;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('`zstd` is not installed');
    expect((err as UserError).hint).toContain('apt-get install zstd');
  });
});
