/**
 * Boot Loader Specification Type #2 entries: one UKI per deployment in `EFI/Linux/`.
 *
 * The file name is the Type #1 name with `.efi`: `bootc-<stateroot>-<id>+3.efi`. systemd-boot
 * counts boots on it exactly as on a `.conf` (renaming `+3` to `+2-1`) and strips the counter
 * from the entry id, so loader.conf's `default bootc-*` matches both kinds.
 *
 * Order and default: systemd-boot reads a UKI's `.osrel` section and takes the entry's sort
 * key from IMAGE_ID (else ID) and its version from IMAGE_VERSION (else VERSION_ID), then
 * sorts exactly as for Type #1 (no tries left last, sort key, version descending). So the
 * UKIs we assemble carry `IMAGE_ID=bootc` and `IMAGE_VERSION=<boot order>` in `.osrel`:
 * the same sort key and version numbers as our Type #1 entries, the highest boots. The
 * booted system reads its own /usr/lib/os-release, never `.osrel`, so the override only
 * affects the menu. A sealed UKI from the image keeps its own `.osrel` (it is signed).
 */
import { BOOTC_SORT_KEY } from '../uki/boot-order.js';
import { BOOT_COUNT_TRIES, entryFileName, parseEntryFileName, type EntryName } from './bls.js';

export const UKI_DIR = 'EFI/Linux';

/** `bootc-<stateroot>-<id>[+left[-done]].efi` */
export const ukiFileName = (name: EntryName): string => entryFileName(name).replace(/\.conf$/, '.efi');

export const newUkiFileName = (stateroot: string, deploymentId: string): string =>
  ukiFileName({ stateroot, deploymentId, counter: { triesLeft: BOOT_COUNT_TRIES } });

/** The inverse of ukiFileName; null for any other file (foreign UKIs, temp names). */
export function parseUkiFileName(fileName: string): EntryName | null {
  if (!fileName.endsWith('.efi')) return null;
  return parseEntryFileName(`${fileName.slice(0, -'.efi'.length)}.conf`);
}

const OVERRIDDEN_KEYS = ['IMAGE_ID', 'IMAGE_VERSION', 'PRETTY_NAME'] as const;

/** os-release(5) value quoting: double quotes, with `"`, `\`, `` ` `` and `$` escaped. */
const quoteOsReleaseValue = (value: string): string => `"${value.replace(/["\\`$]/g, (c) => `\\${c}`)}"`;

/**
 * The `.osrel` of a UKI we assemble: the image's os-release with the menu title and our
 * sort key and boot order number in place of its own IMAGE_ID / IMAGE_VERSION / PRETTY_NAME.
 */
export function ukiOsRelease(imageOsRelease: string, menu: { title: string; bootOrder: number }): string {
  if (!Number.isInteger(menu.bootOrder) || menu.bootOrder < 0) throw new RangeError(`boot order must be a whole number: ${menu.bootOrder}`);
  const kept = imageOsRelease
    .split('\n')
    .filter((line) => line.trim() !== '' && !OVERRIDDEN_KEYS.some((key) => line.trimStart().startsWith(`${key}=`)));
  return [
    ...kept,
    `PRETTY_NAME=${quoteOsReleaseValue(menu.title.replace(/[\r\n]+/g, ' '))}`,
    `IMAGE_ID=${BOOTC_SORT_KEY}`,
    `IMAGE_VERSION=${menu.bootOrder}`,
    '',
  ].join('\n');
}

/**
 * Our UKIs in `fileNames` (names in `EFI/Linux/`) whose deployment is not in `keep`:
 * what garbage collection removes once those deployments are gone. Foreign files stay.
 */
export function staleUkiFileNames(
  fileNames: readonly string[],
  keep: ReadonlyArray<{ stateroot: string; deploymentId: string }>,
): string[] {
  const kept = new Set(keep.map((d) => `${d.stateroot}\0${d.deploymentId}`));
  return fileNames.filter((name) => {
    const parsed = parseUkiFileName(name);
    return parsed !== null && !kept.has(`${parsed.stateroot}\0${parsed.deploymentId}`);
  });
}
