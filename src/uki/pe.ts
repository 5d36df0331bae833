/**
 * PE/COFF images (the format of UEFI executables), as far as a UKI needs them: read the
 * headers and the section table of a stub, and append data sections to it.
 *
 * Layout of what we read, per the Microsoft PE format specification:
 *
 *   DOS header ("MZ", e_lfanew at 0x3c) → "PE\0\0" → COFF file header (20 bytes)
 *   → optional header (PE32 0x10b or PE32+ 0x20b, with the data directories)
 *   → section table (40 bytes a section) → padding up to SizeOfHeaders → section data
 *
 * Appending a section never moves existing data: the new header goes into the slack
 * between the section table and SizeOfHeaders, the data after everything else. When the
 * headers have no slack left, we refuse rather than relocate the stub's sections.
 */
import { UserError } from '../core/errors.js';

const DOS_MAGIC = 0x5a4d; // "MZ"
const PE_SIGNATURE = 0x00004550; // "PE\0\0"
const PE_LFANEW_OFFSET = 0x3c;
const COFF_HEADER_BYTES = 20;
export const SECTION_HEADER_BYTES = 40;
/** Longer names live in the COFF string table, which images must not use. */
export const SECTION_NAME_MAX = 8;

export const PE32_MAGIC = 0x10b;
export const PE32_PLUS_MAGIC = 0x20b;

/** Data directory index of the Authenticode certificate table (a file offset, not an RVA). */
export const CERTIFICATE_TABLE_DIRECTORY = 4;

/** Section characteristics flags we use. */
export const SCN_CNT_CODE = 0x00000020;
export const SCN_CNT_INITIALIZED_DATA = 0x00000040;
export const SCN_MEM_EXECUTE = 0x20000000;
export const SCN_MEM_READ = 0x40000000;
export const SCN_MEM_WRITE = 0x80000000;
/** What every UKI resource section is: initialized, read-only data. */
export const READ_ONLY_DATA = SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ;

export interface PeSection {
  name: string;
  virtualSize: number;
  virtualAddress: number;
  sizeOfRawData: number;
  pointerToRawData: number;
  characteristics: number;
}

export interface DataDirectory {
  /** An RVA, except for the certificate table, where it is a file offset. */
  address: number;
  size: number;
}

export interface PeHeaders {
  peOffset: number;
  machine: number;
  numberOfSections: number;
  timeDateStamp: number;
  pointerToSymbolTable: number;
  numberOfSymbols: number;
  sizeOfOptionalHeader: number;
  fileCharacteristics: number;
  magic: typeof PE32_MAGIC | typeof PE32_PLUS_MAGIC;
  sizeOfInitializedData: number;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sizeOfHeaders: number;
  checkSum: number;
  subsystem: number;
  dataDirectories: DataDirectory[];
  sections: PeSection[];
  /** File offset of the first section header. */
  sectionTableOffset: number;
}

// Offsets inside the optional header; the same for PE32 and PE32+ up to the data directories.
const OPT_SIZE_OF_INITIALIZED_DATA = 8;
const OPT_SECTION_ALIGNMENT = 32;
const OPT_FILE_ALIGNMENT = 36;
const OPT_SIZE_OF_IMAGE = 56;
const OPT_SIZE_OF_HEADERS = 60;
const OPT_CHECKSUM = 64;
const OPT_SUBSYSTEM = 68;
const optNumberOfRvaAndSizes = (magic: number): number => (magic === PE32_PLUS_MAGIC ? 108 : 92);

function malformed(file: string, what: string): UserError {
  return new UserError(`${file} is not a valid PE/COFF image: ${what}`, {
    hint: 'pass an EFI executable such as /usr/lib/systemd/boot/efi/linuxx64.efi.stub (Debian package systemd-boot-efi)',
  });
}

export const alignUp = (value: number, alignment: number): number => Math.ceil(value / alignment) * alignment;

/** Parse the headers of a PE image; `file` only names it in errors. */
export function parsePe(bytes: Uint8Array, file: string): PeHeaders {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (end: number, what: string): void => {
    if (end > bytes.byteLength) throw malformed(file, `the file ends inside the ${what} (${bytes.byteLength} bytes)`);
  };
  need(0x40, 'DOS header');
  if (view.getUint16(0, true) !== DOS_MAGIC) throw malformed(file, 'no "MZ" signature');
  const peOffset = view.getUint32(PE_LFANEW_OFFSET, true);
  need(peOffset + 4 + COFF_HEADER_BYTES, 'COFF header');
  if (view.getUint32(peOffset, true) !== PE_SIGNATURE) throw malformed(file, `no "PE" signature at offset 0x${peOffset.toString(16)}`);
  const coff = peOffset + 4;
  const machine = view.getUint16(coff, true);
  const numberOfSections = view.getUint16(coff + 2, true);
  const timeDateStamp = view.getUint32(coff + 4, true);
  const pointerToSymbolTable = view.getUint32(coff + 8, true);
  const numberOfSymbols = view.getUint32(coff + 12, true);
  const sizeOfOptionalHeader = view.getUint16(coff + 16, true);
  const fileCharacteristics = view.getUint16(coff + 18, true);
  const opt = coff + COFF_HEADER_BYTES;
  need(opt + sizeOfOptionalHeader, 'optional header');
  if (sizeOfOptionalHeader < OPT_SUBSYSTEM + 2) throw malformed(file, `optional header too small (${sizeOfOptionalHeader} bytes)`);
  const magic = view.getUint16(opt, true);
  if (magic !== PE32_MAGIC && magic !== PE32_PLUS_MAGIC) throw malformed(file, `unknown optional header magic 0x${magic.toString(16)}`);
  const rvaCountOffset = optNumberOfRvaAndSizes(magic);
  if (sizeOfOptionalHeader < rvaCountOffset + 4) throw malformed(file, 'optional header has no data directories');
  const numberOfRvaAndSizes = view.getUint32(opt + rvaCountOffset, true);
  if (rvaCountOffset + 4 + numberOfRvaAndSizes * 8 > sizeOfOptionalHeader) {
    throw malformed(file, `${numberOfRvaAndSizes} data directories do not fit in the optional header`);
  }
  const dataDirectories: DataDirectory[] = [];
  for (let i = 0; i < numberOfRvaAndSizes; i++) {
    const at = opt + rvaCountOffset + 4 + i * 8;
    dataDirectories.push({ address: view.getUint32(at, true), size: view.getUint32(at + 4, true) });
  }
  const sectionAlignment = view.getUint32(opt + OPT_SECTION_ALIGNMENT, true);
  const fileAlignment = view.getUint32(opt + OPT_FILE_ALIGNMENT, true);
  if (!isPowerOfTwo(fileAlignment) || !isPowerOfTwo(sectionAlignment) || sectionAlignment < fileAlignment) {
    throw malformed(file, `bad alignment (SectionAlignment 0x${sectionAlignment.toString(16)}, FileAlignment 0x${fileAlignment.toString(16)})`);
  }
  const sizeOfHeaders = view.getUint32(opt + OPT_SIZE_OF_HEADERS, true);
  const sectionTableOffset = opt + sizeOfOptionalHeader;
  const sectionTableEnd = sectionTableOffset + numberOfSections * SECTION_HEADER_BYTES;
  need(sectionTableEnd, 'section table');
  if (sectionTableEnd > sizeOfHeaders) throw malformed(file, 'the section table extends past SizeOfHeaders');
  const sections: PeSection[] = [];
  for (let i = 0; i < numberOfSections; i++) {
    const at = sectionTableOffset + i * SECTION_HEADER_BYTES;
    const section: PeSection = {
      name: sectionName(bytes.subarray(at, at + SECTION_NAME_MAX)),
      virtualSize: view.getUint32(at + 8, true),
      virtualAddress: view.getUint32(at + 12, true),
      sizeOfRawData: view.getUint32(at + 16, true),
      pointerToRawData: view.getUint32(at + 20, true),
      characteristics: view.getUint32(at + 36, true),
    };
    if (section.sizeOfRawData > 0 && section.pointerToRawData + section.sizeOfRawData > bytes.byteLength) {
      throw malformed(file, `section ${section.name} extends past the end of the file`);
    }
    sections.push(section);
  }
  return {
    peOffset,
    machine,
    numberOfSections,
    timeDateStamp,
    pointerToSymbolTable,
    numberOfSymbols,
    sizeOfOptionalHeader,
    fileCharacteristics,
    magic,
    sizeOfInitializedData: view.getUint32(opt + OPT_SIZE_OF_INITIALIZED_DATA, true),
    sectionAlignment,
    fileAlignment,
    sizeOfImage: view.getUint32(opt + OPT_SIZE_OF_IMAGE, true),
    sizeOfHeaders,
    checkSum: view.getUint32(opt + OPT_CHECKSUM, true),
    subsystem: view.getUint16(opt + OPT_SUBSYSTEM, true),
    dataDirectories,
    sections,
    sectionTableOffset,
  };
}

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

function sectionName(raw: Uint8Array): string {
  const nul = raw.indexOf(0);
  return Buffer.from(raw.subarray(0, nul === -1 ? raw.length : nul)).toString('latin1');
}

/** The bytes of a section as loaded (VirtualSize, or the raw size if smaller: the rest is zero fill). */
export function sectionData(bytes: Uint8Array, section: PeSection): Uint8Array {
  const length = section.virtualSize === 0 ? section.sizeOfRawData : Math.min(section.virtualSize, section.sizeOfRawData);
  return bytes.subarray(section.pointerToRawData, section.pointerToRawData + length);
}

/**
 * The PE checksum: the file as 16-bit little-endian words summed with end-around carry,
 * the CheckSum field itself counted as zero, plus the file length. Fed in pieces, so a
 * file streamed to disk is summed as it is written.
 */
export class PeChecksum {
  private sum = 0;
  private length = 0;
  /** A byte left over from an odd-sized piece: the low half of the next word. */
  private pending: number | null = null;

  /** `bytes` must already hold zero in the CheckSum field. */
  add(bytes: Uint8Array): void {
    let i = 0;
    const n = bytes.byteLength;
    if (this.pending !== null && n > 0) {
      this.addWord(this.pending | (bytes[0]! << 8));
      this.pending = null;
      i = 1;
    }
    for (; i + 1 < n; i += 2) this.addWord(bytes[i]! | (bytes[i + 1]! << 8));
    if (i < n) this.pending = bytes[i]!;
    this.length += n;
  }

  private addWord(word: number): void {
    this.sum += word;
    // Folding each time keeps `sum` far from the 2^53 limit on files of any size.
    if (this.sum > 0xffff) this.sum = (this.sum & 0xffff) + (this.sum >>> 16);
  }

  value(): number {
    let sum = this.sum;
    if (this.pending !== null) {
      sum += this.pending;
      sum = (sum & 0xffff) + (sum >>> 16);
    }
    sum = (sum & 0xffff) + (sum >>> 16);
    return (sum + this.length) >>> 0;
  }
}

/** The checksum of a whole image, its CheckSum field (at `checksumAt`) counted as zero. */
export function peChecksum(bytes: Uint8Array, checksumAt: number): number {
  const sum = new PeChecksum();
  sum.add(bytes.subarray(0, checksumAt));
  sum.add(new Uint8Array(Math.min(4, Math.max(0, bytes.byteLength - checksumAt))));
  sum.add(bytes.subarray(Math.min(bytes.byteLength, checksumAt + 4)));
  return sum.value();
}

export const checksumOffset = (headers: Pick<PeHeaders, 'peOffset'>): number => headers.peOffset + 4 + COFF_HEADER_BYTES + OPT_CHECKSUM;

/** File offset of data directory `index` (address, then size, 4 bytes each). */
export const dataDirectoryOffset = (headers: Pick<PeHeaders, 'peOffset' | 'magic'>, index: number): number =>
  headers.peOffset + 4 + COFF_HEADER_BYTES + optNumberOfRvaAndSizes(headers.magic) + 4 + index * 8;

/** A section to append, known by its size; its bytes come later (in memory or streamed). */
export interface SectionSpec {
  name: string;
  byteLength: number;
  /** Default: initialized read-only data. */
  characteristics?: number;
}

export interface NewSection {
  name: string;
  data: Uint8Array;
  /** Default: initialized read-only data. */
  characteristics?: number;
}

/** How many more section headers fit between the section table and SizeOfHeaders. */
export function freeSectionHeaderSlots(headers: PeHeaders): number {
  const tableEnd = headers.sectionTableOffset + headers.numberOfSections * SECTION_HEADER_BYTES;
  // Section data may start before SizeOfHeaders claims; never write a header over it.
  const firstData = Math.min(
    headers.sizeOfHeaders,
    ...headers.sections.filter((s) => s.sizeOfRawData > 0).map((s) => s.pointerToRawData),
  );
  return Math.max(0, Math.floor((firstData - tableEnd) / SECTION_HEADER_BYTES));
}

/** Where a new section goes: its header fields, before the data is written. */
export type SectionPlacement = PeSection;

export interface AppendPlan {
  placements: SectionPlacement[];
  /** The stub is cut here: section data ends, the COFF symbol table and any signature are dropped. */
  stubBytes: number;
  sizeOfImage: number;
  sizeOfInitializedData: number;
  fileBytes: number;
  droppedSignature: boolean;
  droppedSymbolTable: boolean;
}

/**
 * Where each new section lands: virtual addresses after the last existing section (on
 * SectionAlignment), file data after the last existing section data (on FileAlignment).
 * Anything after the stub's section data (a COFF symbol table, which the PE spec says an
 * image should not carry, or an Authenticode signature, which our change invalidates)
 * is dropped, so a later signature covers every byte of the file.
 */
export function planAppend(headers: PeHeaders, fileBytes: number, sections: readonly SectionSpec[], file: string): AppendPlan {
  const free = freeSectionHeaderSlots(headers);
  if (sections.length > free) {
    throw new UserError(`${file} has room for ${free} more section header(s) but ${sections.length} are needed`, {
      hint: 'use a stub linked with more header space (SizeOfHeaders), such as systemd-boot-efi\'s linuxx64.efi.stub',
    });
  }
  const existing = new Set(headers.sections.map((s) => s.name));
  for (const section of sections) {
    if (section.name.length === 0 || section.name.length > SECTION_NAME_MAX || !/^[\x21-\x7e]+$/.test(section.name)) {
      throw new UserError(`invalid PE section name ${JSON.stringify(section.name)}`, {
        hint: `a section name is 1 to ${SECTION_NAME_MAX} printable ASCII characters, e.g. .cmdline`,
      });
    }
    if (existing.has(section.name)) {
      throw new UserError(`${file} already has a ${section.name} section`, {
        hint: 'start from the plain stub, not from an assembled UKI',
      });
    }
    existing.add(section.name);
    if (section.byteLength === 0) {
      throw new UserError(`the ${section.name} section would be empty`, { hint: 'leave an empty section out' });
    }
  }
  const certificate = headers.dataDirectories[CERTIFICATE_TABLE_DIRECTORY];
  const droppedSignature = certificate !== undefined && certificate.size > 0;
  const dataEnd = Math.max(
    headers.sizeOfHeaders,
    ...headers.sections.map((s) => (s.sizeOfRawData > 0 ? s.pointerToRawData + s.sizeOfRawData : 0)),
  );
  const stubBytes = Math.min(dataEnd, fileBytes);
  let virtualEnd = alignUp(
    Math.max(headers.sizeOfImage, ...headers.sections.map((s) => s.virtualAddress + Math.max(s.virtualSize, s.sizeOfRawData))),
    headers.sectionAlignment,
  );
  let rawEnd = alignUp(stubBytes, headers.fileAlignment);
  let sizeOfInitializedData = headers.sizeOfInitializedData;
  const placements: SectionPlacement[] = [];
  for (const section of sections) {
    const characteristics = section.characteristics ?? READ_ONLY_DATA;
    const sizeOfRawData = alignUp(section.byteLength, headers.fileAlignment);
    placements.push({
      name: section.name,
      virtualSize: section.byteLength,
      virtualAddress: virtualEnd,
      sizeOfRawData,
      pointerToRawData: rawEnd,
      characteristics,
    });
    if (characteristics & SCN_CNT_INITIALIZED_DATA) sizeOfInitializedData += sizeOfRawData;
    virtualEnd = alignUp(virtualEnd + section.byteLength, headers.sectionAlignment);
    rawEnd += sizeOfRawData;
  }
  return {
    placements,
    stubBytes,
    sizeOfImage: virtualEnd,
    sizeOfInitializedData: sizeOfInitializedData >>> 0,
    fileBytes: rawEnd,
    droppedSignature,
    droppedSymbolTable: headers.pointerToSymbolTable !== 0 || headers.numberOfSymbols !== 0,
  };
}

/**
 * The first `plan.stubBytes` bytes of the new image: the stub's headers updated for the
 * appended sections, with the CheckSum field zero (filled in once the data is summed).
 */
export function headerBlock(stub: Uint8Array, headers: PeHeaders, plan: AppendPlan): Uint8Array {
  const out = new Uint8Array(plan.stubBytes);
  out.set(stub.subarray(0, plan.stubBytes));
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const coff = headers.peOffset + 4;
  const opt = coff + COFF_HEADER_BYTES;
  view.setUint16(coff + 2, headers.numberOfSections + plan.placements.length, true);
  view.setUint32(coff + 8, 0, true); // PointerToSymbolTable: dropped with the tail
  view.setUint32(coff + 12, 0, true); // NumberOfSymbols
  view.setUint32(opt + OPT_SIZE_OF_INITIALIZED_DATA, plan.sizeOfInitializedData, true);
  view.setUint32(opt + OPT_SIZE_OF_IMAGE, plan.sizeOfImage, true);
  if (plan.droppedSignature) {
    const at = opt + optNumberOfRvaAndSizes(headers.magic) + 4 + CERTIFICATE_TABLE_DIRECTORY * 8;
    view.setUint32(at, 0, true);
    view.setUint32(at + 4, 0, true);
  }
  plan.placements.forEach((section, i) => {
    const at = headers.sectionTableOffset + (headers.numberOfSections + i) * SECTION_HEADER_BYTES;
    out.fill(0, at, at + SECTION_HEADER_BYTES);
    out.set(Buffer.from(section.name, 'latin1'), at);
    view.setUint32(at + 8, section.virtualSize, true);
    view.setUint32(at + 12, section.virtualAddress, true);
    view.setUint32(at + 16, section.sizeOfRawData, true);
    view.setUint32(at + 20, section.pointerToRawData, true);
    view.setUint32(at + 36, section.characteristics >>> 0, true);
  });
  view.setUint32(checksumOffset(headers), 0, true);
  return out;
}

export const specOf = (section: NewSection): SectionSpec => ({
  name: section.name,
  byteLength: section.data.byteLength,
  ...(section.characteristics !== undefined ? { characteristics: section.characteristics } : {}),
});

/**
 * A new image in memory: the stub with `sections` appended, headers updated and the
 * checksum recomputed. `file` names the stub in errors.
 */
export function appendSections(stub: Uint8Array, sections: readonly NewSection[], file: string): { image: Uint8Array; plan: AppendPlan } {
  const headers = parsePe(stub, file);
  const plan = planAppend(headers, stub.byteLength, sections.map(specOf), file);
  const out = new Uint8Array(plan.fileBytes);
  out.set(headerBlock(stub, headers, plan));
  plan.placements.forEach((placement, i) => out.set(sections[i]!.data, placement.pointerToRawData));
  const sumAt = checksumOffset(headers);
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(sumAt, peChecksum(out, sumAt), true);
  return { image: out, plan };
}
