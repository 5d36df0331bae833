/**
 * Changing the boot order of a UKI we assembled: its `.osrel` IMAGE_VERSION is what
 * systemd-boot sorts by (src/boot/uki-entry.ts), so a rollback rewrites that one value.
 *
 * The new `.osrel` must fit where the old one was (its raw data is padded to FileAlignment,
 * and the next section starts at the next SectionAlignment boundary): a boot order number
 * grows by a digit now and then, well inside that slack. Nothing else moves. An
 * Authenticode signature covers `.osrel`, so a signed UKI loses its signature here and is
 * signed again by the caller (or refused when there is no key). A UKI whose `.osrel` does
 * not carry our sort key (a sealed one from the image) is refused: its order is its own.
 */
import { UserError } from '../core/errors.js';
import { CERTIFICATE_TABLE_DIRECTORY, SECTION_HEADER_BYTES, checksumOffset, dataDirectoryOffset, parsePe, peChecksum, sectionData } from './pe.js';

/**
 * One sort key for every bootc entry, so `version` alone orders them: a Type #1 entry's
 * `sort-key`, a UKI's `.osrel` IMAGE_ID (systemd-boot sorts both the same way).
 */
export const BOOTC_SORT_KEY = 'bootc';

export interface ReorderedUki {
  bytes: Uint8Array;
  /** The input was signed; `bytes` is not any more. */
  signatureRemoved: boolean;
}

/** The IMAGE_VERSION of a `.osrel` text, if it is ours (IMAGE_ID=bootc). */
export function bootOrderOfOsrel(osrel: string): number | null {
  const value = (key: string): string | undefined => {
    const line = osrel.split('\n').reverse().find((l) => l.startsWith(`${key}=`));
    return line?.slice(key.length + 1).replace(/^["']|["']$/g, '');
  };
  if (value('IMAGE_ID') !== BOOTC_SORT_KEY) return null;
  const version = Number(value('IMAGE_VERSION'));
  return Number.isInteger(version) && version >= 0 ? version : null;
}

export function withBootOrder(uki: Uint8Array, file: string, bootOrder: number): ReorderedUki {
  if (!Number.isInteger(bootOrder) || bootOrder < 0) throw new RangeError(`boot order must be a whole number: ${bootOrder}`);
  const headers = parsePe(uki, file);
  const index = headers.sections.findIndex((s) => s.name === '.osrel');
  const osrel = headers.sections[index];
  if (!osrel) throw new UserError(`${file} has no .osrel section`, { hint: 'only UKIs assembled by bootc can be reordered' });
  const text = Buffer.from(sectionData(uki, osrel)).toString('utf8');
  if (bootOrderOfOsrel(text) === null) {
    throw new UserError(`${file} is not ordered by bootc (its .osrel has no IMAGE_ID=${BOOTC_SORT_KEY} and IMAGE_VERSION)`, {
      hint: 'a UKI shipped in the image keeps the order its own os-release gives it',
    });
  }
  const content = Buffer.from(text.replace(/^IMAGE_VERSION=.*$/m, `IMAGE_VERSION=${bootOrder}`), 'utf8');
  const nextAddress = Math.min(
    ...headers.sections.filter((s) => s.virtualAddress > osrel.virtualAddress).map((s) => s.virtualAddress),
    osrel.virtualAddress + osrel.sizeOfRawData,
  );
  if (content.byteLength > Math.min(osrel.sizeOfRawData, nextAddress - osrel.virtualAddress)) {
    throw new UserError(`the new .osrel of ${file} does not fit in place`, { hint: 'rebuild the UKI (bootc upgrade writes a new one)' });
  }

  const certificates = headers.dataDirectories[CERTIFICATE_TABLE_DIRECTORY];
  const signed = (certificates?.size ?? 0) > 0;
  // The certificate table sits at the end of the file: cut it off with its directory entry.
  const length = signed ? certificates!.address : uki.byteLength;
  const out = new Uint8Array(uki.subarray(0, length));
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (signed) {
    view.setUint32(dataDirectoryOffset(headers, CERTIFICATE_TABLE_DIRECTORY), 0, true);
    view.setUint32(dataDirectoryOffset(headers, CERTIFICATE_TABLE_DIRECTORY) + 4, 0, true);
  }
  out.fill(0, osrel.pointerToRawData, osrel.pointerToRawData + osrel.sizeOfRawData);
  out.set(content, osrel.pointerToRawData);
  view.setUint32(headers.sectionTableOffset + index * SECTION_HEADER_BYTES + 8, content.byteLength, true);
  view.setUint32(checksumOffset(headers), peChecksum(out, checksumOffset(headers)), true);
  return { bytes: out, signatureRemoved: signed };
}
