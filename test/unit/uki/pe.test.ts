import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import {
  appendSections,
  checksumOffset,
  freeSectionHeaderSlots,
  parsePe,
  PeChecksum,
  peChecksum,
  READ_ONLY_DATA,
  sectionData,
} from '../../../src/uki/pe.js';
import { writePeWithSections } from '../../../src/uki/pe-file.js';
import { explainSkip, needsCommands, needsFile } from '../../support/tier.js';
import { suiteDir } from '../../support/temp-tree.js';

/**
 * A minimal PE32+ image built by hand: DOS header, PE signature, COFF header, optional
 * header with 16 data directories, `slots` section headers of room, one .text section.
 */
function synthesisePe(options: { headerBytes?: number; symbolTail?: number; signature?: boolean } = {}): Uint8Array {
  const sizeOfHeaders = options.headerBytes ?? 0x200;
  const fileAlignment = 0x200;
  const text = new Uint8Array(0x30).fill(0xc3);
  const textRaw = 0x200;
  const tail = options.symbolTail ?? 0;
  const sig = options.signature ? 0x100 : 0;
  const bytes = new Uint8Array(sizeOfHeaders + textRaw + tail + sig);
  const v = new DataView(bytes.buffer);
  v.setUint16(0, 0x5a4d, true);
  v.setUint32(0x3c, 0x40, true);
  v.setUint32(0x40, 0x4550, true);
  const coff = 0x44;
  v.setUint16(coff, 0x8664, true); // x86-64
  v.setUint16(coff + 2, 1, true);
  if (tail > 0) {
    v.setUint32(coff + 8, sizeOfHeaders + textRaw, true);
    v.setUint32(coff + 12, 3, true);
  }
  v.setUint16(coff + 16, 240, true);
  v.setUint16(coff + 18, 0x0206, true);
  const opt = coff + 20;
  v.setUint16(opt, 0x20b, true);
  v.setUint32(opt + 4, textRaw, true); // SizeOfCode
  v.setUint32(opt + 8, 0, true); // SizeOfInitializedData
  v.setUint32(opt + 16, 0x1000, true); // AddressOfEntryPoint
  v.setUint32(opt + 32, 0x1000, true); // SectionAlignment
  v.setUint32(opt + 36, fileAlignment, true);
  v.setUint32(opt + 56, 0x2000, true); // SizeOfImage
  v.setUint32(opt + 60, sizeOfHeaders, true);
  v.setUint16(opt + 68, 10, true); // EFI application
  v.setUint32(opt + 108, 16, true);
  if (sig) {
    v.setUint32(opt + 112 + 4 * 8, sizeOfHeaders + textRaw + tail, true);
    v.setUint32(opt + 112 + 4 * 8 + 4, sig, true);
  }
  const sec = opt + 240;
  bytes.set(Buffer.from('.text'), sec);
  v.setUint32(sec + 8, text.length, true);
  v.setUint32(sec + 12, 0x1000, true);
  v.setUint32(sec + 16, textRaw, true);
  v.setUint32(sec + 20, sizeOfHeaders, true);
  v.setUint32(sec + 36, 0x60000020, true);
  bytes.set(text, sizeOfHeaders);
  bytes.fill(0xee, sizeOfHeaders + textRaw);
  v.setUint32(opt + 64, peChecksum(bytes, opt + 64), true);
  return bytes;
}

const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

describe('PE reader', () => {
  it('reads the headers and the section table of a synthesised image', () => {
    const pe = parsePe(synthesisePe(), 'mini.efi');
    expect(pe.magic).toBe(0x20b);
    expect(pe.machine).toBe(0x8664);
    expect(pe.subsystem).toBe(10);
    expect(pe.sectionAlignment).toBe(0x1000);
    expect(pe.fileAlignment).toBe(0x200);
    expect(pe.sizeOfHeaders).toBe(0x200);
    expect(pe.dataDirectories).toHaveLength(16);
    expect(pe.sections).toEqual([
      { name: '.text', virtualSize: 0x30, virtualAddress: 0x1000, sizeOfRawData: 0x200, pointerToRawData: 0x200, characteristics: 0x60000020 },
    ]);
    // 0x200 - (0x40 + 4 + 20 + 240 + 40) = 144 bytes → 3 more headers
    expect(freeSectionHeaderSlots(pe)).toBe(3);
  });

  it.each([
    ['empty', new Uint8Array(0), /ends inside the DOS header/],
    ['not MZ', new Uint8Array(0x100), /no "MZ" signature/],
    [
      'no PE signature',
      (() => {
        const b = synthesisePe();
        b[0x40] = 0;
        return b;
      })(),
      /no "PE" signature/,
    ],
    [
      'truncated sections',
      synthesisePe().subarray(0, 0x300),
      /section \.text extends past the end/,
    ],
    [
      'bad magic',
      (() => {
        const b = synthesisePe();
        b[0x58] = 0x07;
        return b;
      })(),
      /unknown optional header magic/,
    ],
  ])('rejects a malformed image (%s) with a UserError naming the file', (_label, bytes, message) => {
    let caught: unknown;
    try {
      parsePe(bytes, '/tmp/broken.efi');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as UserError).message).toMatch(/^\/tmp\/broken\.efi is not a valid PE\/COFF image/);
    expect((caught as UserError).message).toMatch(message);
  });
});

describe('appending sections', () => {
  it('places sections after the last one, aligned, and round-trips their data', () => {
    const stub = synthesisePe();
    const osrel = text('ID=debian\n');
    const linux = new Uint8Array(0x1234).map((_, i) => i & 0xff);
    const { image } = appendSections(stub, [{ name: '.osrel', data: osrel }, { name: '.linux', data: linux }], 'mini.efi');
    const pe = parsePe(image, 'out.efi');
    expect(pe.sections.map((s) => s.name)).toEqual(['.text', '.osrel', '.linux']);
    const [, o, l] = pe.sections;
    expect(o).toMatchObject({ virtualAddress: 0x2000, virtualSize: osrel.length, sizeOfRawData: 0x200, pointerToRawData: 0x400, characteristics: READ_ONLY_DATA });
    expect(l).toMatchObject({ virtualAddress: 0x3000, virtualSize: 0x1234, sizeOfRawData: 0x1400, pointerToRawData: 0x600 });
    expect(pe.sizeOfImage).toBe(0x5000);
    expect(pe.sizeOfInitializedData).toBe(0x200 + 0x1400);
    expect(image.byteLength).toBe(0x600 + 0x1400);
    expect(Buffer.from(sectionData(image, o!))).toEqual(Buffer.from(osrel));
    expect(Buffer.from(sectionData(image, l!))).toEqual(Buffer.from(linux));
    // the stub's own section is untouched
    expect(Buffer.from(sectionData(image, pe.sections[0]!))).toEqual(Buffer.from(sectionData(stub, parsePe(stub, 'stub').sections[0]!)));
    expect(pe.checkSum).toBe(peChecksum(image, checksumOffset(pe)));
    expect(pe.checkSum).not.toBe(parsePe(stub, 'stub').checkSum);
  });

  it('drops a COFF symbol table and a signature after the section data', () => {
    const stub = synthesisePe({ symbolTail: 0x80, signature: true });
    const { image, plan } = appendSections(stub, [{ name: '.cmdline', data: text('quiet') }], 'mini.efi');
    expect(plan.droppedSymbolTable).toBe(true);
    expect(plan.droppedSignature).toBe(true);
    const pe = parsePe(image, 'out.efi');
    expect(pe.pointerToSymbolTable).toBe(0);
    expect(pe.numberOfSymbols).toBe(0);
    expect(pe.dataDirectories[4]).toEqual({ address: 0, size: 0 });
    expect(pe.sections[1]?.pointerToRawData).toBe(0x400);
    expect(Buffer.from(image).includes(0xee)).toBe(false);
  });

  it('refuses when the headers have no room for more section headers', () => {
    const stub = synthesisePe();
    const four = ['.a', '.b', '.c', '.d'].map((name) => ({ name, data: text('x') }));
    expect(() => appendSections(stub, four, 'mini.efi')).toThrow(/mini\.efi has room for 3 more section header\(s\) but 4 are needed/);
    expect(() => appendSections(stub, four.slice(0, 3), 'mini.efi')).not.toThrow();
  });

  it('refuses duplicate, long and empty sections', () => {
    const stub = synthesisePe();
    expect(() => appendSections(stub, [{ name: '.text', data: text('x') }], 'mini.efi')).toThrow(/already has a \.text section/);
    expect(() => appendSections(stub, [{ name: '.waytoolong', data: text('x') }], 'mini.efi')).toThrow(/invalid PE section name/);
    expect(() => appendSections(stub, [{ name: '.cmdline', data: new Uint8Array() }], 'mini.efi')).toThrow(/would be empty/);
  });
});

const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

describe.skipIf(
  explainSkip('unit', needsFile(STUB, 'apt-get install systemd-boot-efi') ?? needsCommands('objdump', 'sbverify')),
)('on the real systemd-stub', () => {
  const dir = suiteDir('pe');

  it('computes the checksum the linker wrote', () => {
    const stub = readFileSync(STUB);
    const pe = parsePe(stub, STUB);
    expect(peChecksum(stub, checksumOffset(pe))).toBe(pe.checkSum);
  });

  it('objdump -h and sbverify --list read the sections we add', () => {
    const stub = readFileSync(STUB);
    const cmdline = text('console=ttyS0 quiet');
    const blob = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
    const { image } = appendSections(stub, [{ name: '.cmdline', data: cmdline }, { name: '.linux', data: blob }], STUB);
    const out = join(dir.path, 'out.efi');
    writeFileSync(out, image);
    const pe = parsePe(image, out);
    const listing = execFileSync('objdump', ['-h', out], { encoding: 'utf8' });
    for (const section of pe.sections.slice(-2)) {
      const row = listing.split('\n').find((line) => line.trim().split(/\s+/)[1] === section.name);
      expect(row, `${section.name} in objdump -h`).toBeDefined();
      const [, , size, vma, , fileOff] = row!.trim().split(/\s+/);
      expect(parseInt(size!, 16)).toBe(section.virtualSize);
      expect(parseInt(vma!, 16)).toBe(section.virtualAddress);
      expect(parseInt(fileOff!, 16)).toBe(section.pointerToRawData);
    }
    const sbverify = spawnSync('sbverify', ['--list', out], { encoding: 'utf8' });
    expect(sbverify.stdout + sbverify.stderr).toMatch(/No signature table present/);
    // every byte is inside a section or the headers: nothing a signature would leave uncovered
    expect(sbverify.stdout + sbverify.stderr).not.toMatch(/gaps between PE\/COFF sections/);
    const objdumpP = execFileSync('objdump', ['-p', out], { encoding: 'utf8' });
    expect(objdumpP).toMatch(new RegExp(`SizeOfImage\\s+0*${pe.sizeOfImage.toString(16)}\\b`));
    expect(objdumpP).toMatch(new RegExp(`CheckSum\\s+0*${pe.checkSum.toString(16)}\\b`));
  });
});

/** The same image as PE32: 4-byte ImageBase plus BaseOfData, so the data directories start at 96. */
function synthesisePe32(): Uint8Array {
  const pe64 = synthesisePe({ signature: true });
  const opt = 0x44 + 20;
  const out = new Uint8Array(pe64);
  const o = new DataView(out.buffer);
  o.setUint16(opt, 0x10b, true);
  o.setUint16(0x44 + 16, 224, true);
  o.setUint32(opt + 92, 16, true);
  // directories move 16 bytes down; the section table follows the shorter optional header
  out.set(pe64.subarray(opt + 112, opt + 240), opt + 96);
  out.set(pe64.subarray(opt + 240, opt + 280), opt + 224);
  out.fill(0, opt + 264, opt + 280);
  o.setUint32(opt + 64, 0, true);
  o.setUint32(opt + 64, peChecksum(out, opt + 64), true);
  return out;
}

describe('PE32 images', () => {
  it('are read and extended like PE32+', () => {
    const stub = synthesisePe32();
    const pe = parsePe(stub, 'pe32.efi');
    expect(pe.magic).toBe(0x10b);
    expect(pe.dataDirectories[4]?.size).toBe(0x100);
    expect(pe.sections.map((s) => s.name)).toEqual(['.text']);
    const { image, plan } = appendSections(stub, [{ name: '.cmdline', data: text('quiet') }], 'pe32.efi');
    expect(plan.droppedSignature).toBe(true);
    const out = parsePe(image, 'out.efi');
    expect(out.dataDirectories[4]).toEqual({ address: 0, size: 0 });
    expect(out.sections.map((s) => s.name)).toEqual(['.text', '.cmdline']);
    expect(out.checkSum).toBe(peChecksum(image, checksumOffset(out)));
  });
});

describe('PE checksum fed in pieces', () => {
  it('equals the checksum of the whole, whatever the piece sizes', () => {
    const bytes = new Uint8Array(1001).map((_, i) => (i * 31 + 7) & 0xff);
    const whole = new PeChecksum();
    whole.add(bytes);
    for (const cuts of [[1], [3, 4, 5], [500, 1], [999]]) {
      const sum = new PeChecksum();
      let at = 0;
      for (const cut of cuts) {
        sum.add(bytes.subarray(at, at + cut));
        at += cut;
      }
      sum.add(bytes.subarray(at));
      expect(sum.value()).toBe(whole.value());
    }
  });
});

describe('writing a PE file with streamed sections', () => {
  const dir = suiteDir('pe-file');

  it('writes the same bytes as the in-memory appender', async () => {
    const stubPath = join(dir.path, 'stub.efi');
    const stub = synthesisePe({ symbolTail: 0x40 });
    writeFileSync(stubPath, stub);
    const big = new Uint8Array(200_001).map((_, i) => (i * 13) & 0xff);
    const bigPath = join(dir.path, 'big');
    writeFileSync(bigPath, big);
    const out = join(dir.path, 'out.efi');
    await writePeWithSections(stubPath, [{ name: '.osrel', content: text('ID=x\n') }, { name: '.initrd', content: { path: bigPath } }], out);
    const expected = appendSections(stub, [{ name: '.osrel', data: text('ID=x\n') }, { name: '.initrd', data: big }], stubPath).image;
    expect(readFileSync(out).equals(Buffer.from(expected))).toBe(true);
    expect(readdirSync(dir.path).sort()).toEqual(['big', 'out.efi', 'stub.efi']);
  });

  it('leaves nothing behind when the plan is refused', async () => {
    const stubPath = join(dir.path, 'stub2.efi');
    writeFileSync(stubPath, synthesisePe());
    const out = join(dir.path, 'refused.efi');
    const four = ['.a', '.b', '.c', '.d'].map((name) => ({ name, content: text('x') }));
    await expect(writePeWithSections(stubPath, four, out)).rejects.toThrow(/room for 3 more/);
    expect(readdirSync(dir.path).filter((n) => n.includes('refused'))).toEqual([]);
  });
});
