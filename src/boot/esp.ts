/**
 * The EFI system partition, written without mounting it: `mkfs.fat` creates the FAT32
 * filesystem (in a file of its own, or at an offset inside a disk image) and mtools place
 * and read files in it. The kernel on build machines may have no vfat driver, and CI
 * containers may not mount at all.
 *
 * Layout (DESIGN.md "Boot protocol"):
 *   EFI/BOOT/BOOTX64.EFI, EFI/systemd/systemd-bootx64.efi   systemd-boot
 *   loader/loader.conf, loader/entries/bootc-*.conf          menu and BLS entries
 *   bootc/<id>/vmlinuz, bootc/<id>/initrd.img                 per deployment
 *   EFI/Linux/bootc-<stateroot>-<id>+3.efi                    or its UKI (Type #2)
 *   loader/keys/                                              Secure Boot keys from the image
 */
import { access, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { run } from '../core/exec.js';
import { UserError, invariant, withContext } from '../core/errors.js';
import { finalNameOf, tempNameFor } from '../core/durable-file.js';
import { ENTRIES_DIR, LOADER_CONF_PATH, parseEntryFileName, renderBlsEntry, renderLoaderConf, type BlsEntry, type LoaderConf } from './bls.js';
import { parseUkiFileName, staleUkiFileNames, UKI_DIR } from './uki-entry.js';
import { signPe, type SigningKey } from '../uki/uki.js';

/** Where an ESP filesystem lives: a file, and the byte offset of the filesystem in it. */
export interface EspLocation {
  image: string;
  /** 0 for a file holding just the ESP; the partition start inside a disk image. */
  offsetBytes: number;
}

export const ESP_LABEL = 'EFI-SYSTEM';
/** systemd-boot inside an image, and the build host's copy (Debian systemd-boot-efi). */
export const SYSTEMD_BOOT_IN_IMAGE = 'usr/lib/systemd/boot/efi/systemd-bootx64.efi';
export const SYSTEMD_BOOT_ON_HOST = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
/** The removable-media path firmware boots without any boot entry in NVRAM. */
export const FALLBACK_LOADER_PATH = 'EFI/BOOT/BOOTX64.EFI';
export const SYSTEMD_BOOT_PATH = 'EFI/systemd/systemd-bootx64.efi';

const SECTOR_BYTES = 512;
/** FAT32 needs at least 65525 clusters; at 512-byte clusters that is just over 32 MiB. */
export const ESP_MIN_BYTES = 33 * 1024 * 1024;

/** mtools' "image@@offset" drive syntax. */
const drive = (loc: EspLocation): string => (loc.offsetBytes === 0 ? loc.image : `${loc.image}@@${loc.offsetBytes}`);
const espPath = (path: string): string => `::/${path.replace(/^\/+/, '')}`;
/** mtools refuse to work on an image with an "unusual" geometry without this. */
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' } as const;

/** Creates the FAT32 filesystem; `sizeBytes` from `offsetBytes` on, whole sectors. */
export async function formatEsp(loc: EspLocation, sizeBytes: number): Promise<void> {
  invariant(loc.offsetBytes % SECTOR_BYTES === 0, `ESP offset ${loc.offsetBytes} is not sector-aligned`);
  if (sizeBytes < ESP_MIN_BYTES) {
    throw new UserError(`the ESP of ${formatMiB(sizeBytes)} is too small for FAT32`, {
      hint: `give it at least ${formatMiB(ESP_MIN_BYTES)}`,
    });
  }
  await run({
    description: `Creating the FAT32 filesystem of the ESP in ${loc.image}`,
    argv: [
      'mkfs.fat', '-F', '32', '-n', ESP_LABEL,
      '--offset', String(loc.offsetBytes / SECTOR_BYTES),
      loc.image, String(Math.floor(sizeBytes / 1024)),
    ],
  });
}

async function exists(loc: EspLocation, path: string): Promise<boolean> {
  const r = await run({
    description: `Looking for ${path} on the ESP`,
    argv: ['mdir', '-b', '-i', drive(loc), espPath(path)],
    env: MTOOLS_ENV,
    okExitCodes: [1],
  });
  return r.exitCode === 0;
}

/** Creates `dir` and its parents on the ESP where missing. */
export async function ensureEspDirectory(loc: EspLocation, dir: string): Promise<void> {
  const parts = dir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const path = parts.slice(0, i).join('/');
    if (await exists(loc, path)) continue;
    await run({ description: `Creating ${path} on the ESP`, argv: ['mmd', '-i', drive(loc), espPath(path)], env: MTOOLS_ENV });
  }
}

/** One file from the host onto the ESP, replacing what is there. */
export interface EspFile {
  /** Path on the ESP, e.g. `bootc/d1/vmlinuz`. */
  path: string;
  hostPath: string;
}

export async function copyToEsp(loc: EspLocation, files: readonly EspFile[]): Promise<void> {
  for (const file of files) {
    await ensureEspDirectory(loc, posix.dirname(file.path));
    await run({
      description: `Copying ${file.hostPath} to ${file.path} on the ESP`,
      argv: ['mcopy', '-o', '-D', 'o', '-i', drive(loc), file.hostPath, espPath(file.path)],
      env: MTOOLS_ENV,
    });
  }
}

/**
 * A large file (a UKI) under a temporary name, then renamed: systemd-boot lists only
 * `*.efi` in EFI/Linux/, so a half-copied UKI is never offered.
 */
export async function copyToEspAtomically(loc: EspLocation, file: EspFile): Promise<void> {
  const dir = posix.dirname(file.path);
  const tmpName = posix.basename(tempNameFor(file.path));
  await copyToEsp(loc, [{ path: posix.join(dir, tmpName), hostPath: file.hostPath }]);
  await run({
    description: `Renaming ${tmpName} to ${posix.basename(file.path)} on the ESP`,
    argv: ['mren', '-D', 'o', '-i', drive(loc), espPath(posix.join(dir, tmpName)), espPath(file.path)],
    env: MTOOLS_ENV,
    stdin: '',
  });
}

/**
 * Writes a small text file under a temporary name and renames it into place, so a reader
 * (systemd-boot reads only `*.conf`) never sees a half-written file under the real name.
 */
export async function writeEspText(loc: EspLocation, path: string, text: string): Promise<void> {
  await withContext(`Writing ${path} on the ESP`, async () => {
    const dir = posix.dirname(path);
    await ensureEspDirectory(loc, dir);
    const local = await mkdtemp(join(tmpdir(), 'bootc-esp-'));
    try {
      const hostFile = join(local, 'content');
      await writeFile(hostFile, text);
      const tmpName = posix.basename(tempNameFor(path));
      await run({
        description: `Copying ${path} to the ESP under a temporary name`,
        argv: ['mcopy', '-o', '-D', 'o', '-i', drive(loc), hostFile, espPath(posix.join(dir, tmpName))],
        env: MTOOLS_ENV,
      });
      await run({
        description: `Renaming ${tmpName} to ${posix.basename(path)} on the ESP`,
        argv: ['mren', '-D', 'o', '-i', drive(loc), espPath(posix.join(dir, tmpName)), espPath(path)],
        env: MTOOLS_ENV,
        stdin: '',
      });
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  });
}

export async function readEspText(loc: EspLocation, path: string): Promise<string> {
  const r = await run({
    description: `Reading ${path} from the ESP`,
    argv: ['mcopy', '-n', '-i', drive(loc), espPath(path), '-'],
    env: MTOOLS_ENV,
  });
  return r.stdout;
}

/** Names (not paths) of the files in a directory of the ESP; none if it does not exist. */
export async function listEspDirectory(loc: EspLocation, dir: string): Promise<string[]> {
  if (!(await exists(loc, dir))) return [];
  const r = await run({
    description: `Listing ${dir} on the ESP`,
    argv: ['mdir', '-b', '-i', drive(loc), espPath(dir)],
    env: MTOOLS_ENV,
  });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.slice(line.lastIndexOf('/') + 1))
    .filter((name) => name !== '.' && name !== '..');
}

export async function removeEspFile(loc: EspLocation, path: string): Promise<void> {
  await run({ description: `Removing ${path} from the ESP`, argv: ['mdel', '-i', drive(loc), espPath(path)], env: MTOOLS_ENV });
}

/** systemd-boot from the deployment, or the build host's copy if the image has none. */
export async function findSystemdBoot(deploymentDir: string): Promise<string> {
  for (const candidate of [join(deploymentDir, SYSTEMD_BOOT_IN_IMAGE), SYSTEMD_BOOT_ON_HOST]) {
    try {
      await access(candidate);
      return candidate;
    } catch {
      // next
    }
  }
  throw new UserError(`no systemd-boot: neither the image nor this host has ${SYSTEMD_BOOT_ON_HOST}`, {
    hint: 'install the Debian package systemd-boot-efi on this host, or add it to the image',
  });
}

/**
 * systemd-boot at the fallback path (no NVRAM entry needed) and at its own path; signed
 * with `signing` for Secure Boot (the firmware verifies it before it verifies a UKI).
 */
export async function installSystemdBoot(loc: EspLocation, deploymentDir: string, signing?: SigningKey): Promise<void> {
  const binary = await findSystemdBoot(deploymentDir);
  if (!signing) {
    await copyToEsp(loc, [
      { path: FALLBACK_LOADER_PATH, hostPath: binary },
      { path: SYSTEMD_BOOT_PATH, hostPath: binary },
    ]);
    return;
  }
  const work = await mkdtemp(join(tmpdir(), 'bootc-sign-'));
  try {
    const signed = join(work, 'systemd-bootx64.efi');
    await signPe(binary, signed, signing);
    await copyToEsp(loc, [
      { path: FALLBACK_LOADER_PATH, hostPath: signed },
      { path: SYSTEMD_BOOT_PATH, hostPath: signed },
    ]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Where an image ships keys for systemd-boot's Secure Boot enrolment (as upstream bootc). */
export const SECURE_BOOT_KEYS_IN_IMAGE = 'usr/lib/bootc/install/secureboot-keys';
export const LOADER_KEYS_DIR = 'loader/keys';

/** Copies the image's Secure Boot keys (e.g. `<name>/PK.auth`) to loader/keys/; none: nothing. */
export async function installSecureBootKeys(loc: EspLocation, deploymentDir: string): Promise<string[]> {
  const source = join(deploymentDir, SECURE_BOOT_KEYS_IN_IMAGE);
  let names: string[];
  try {
    names = (await readdir(source, { recursive: true })).map(String).sort();
  } catch {
    return [];
  }
  const files: EspFile[] = [];
  for (const name of names) {
    if ((await stat(join(source, name))).isFile()) files.push({ path: posix.join(LOADER_KEYS_DIR, name), hostPath: join(source, name) });
  }
  await copyToEsp(loc, files);
  return files.map((f) => f.path);
}

/** File names of our UKIs in EFI/Linux/ (foreign UKIs left out). */
export async function listUkis(loc: EspLocation): Promise<string[]> {
  return (await listEspDirectory(loc, UKI_DIR)).filter((name) => parseUkiFileName(name) !== null).sort();
}

/**
 * Garbage collection of UKIs on an unmounted ESP (mtools): removes our UKIs whose
 * deployment is not in `keep`. Returns the removed names. The mounted-ESP twin is
 * removeStaleUkisFromDir.
 */
export async function removeStaleUkis(loc: EspLocation, keep: ReadonlyArray<{ stateroot: string; deploymentId: string }>): Promise<string[]> {
  const stale = staleUkiFileNames(await listEspDirectory(loc, UKI_DIR), keep);
  for (const name of stale) await removeEspFile(loc, posix.join(UKI_DIR, name));
  return stale;
}

/**
 * The same on a mounted ESP (`bootDir` = /boot in the booted system, where the updates code
 * writes with plain file operations). Temporary files of an interrupted copy of a UKI go too.
 */
export async function removeStaleUkisFromDir(bootDir: string, keep: ReadonlyArray<{ stateroot: string; deploymentId: string }>): Promise<string[]> {
  const dir = join(bootDir, UKI_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const stale = [...staleUkiFileNames(names, keep), ...names.filter((n) => /^bootc-.*\.efi$/.test(finalNameOf(n) ?? ''))];
  for (const name of stale) await rm(join(dir, name), { force: true });
  return stale;
}

export async function writeLoaderConf(loc: EspLocation, conf: LoaderConf = {}): Promise<void> {
  await writeEspText(loc, LOADER_CONF_PATH, renderLoaderConf(conf));
}

export async function writeBootEntry(loc: EspLocation, fileName: string, entry: BlsEntry): Promise<void> {
  invariant(parseEntryFileName(fileName) !== null, `not a bootc entry file name: ${fileName}`);
  await writeEspText(loc, posix.join(ENTRIES_DIR, fileName), renderBlsEntry(entry));
}

/** File names of our BLS entries on the ESP (foreign entries left out). */
export async function listBootEntries(loc: EspLocation): Promise<string[]> {
  const names = await listEspDirectory(loc, ENTRIES_DIR);
  return names.filter((name) => parseEntryFileName(name) !== null).sort();
}

export const readBootEntry = (loc: EspLocation, fileName: string): Promise<string> =>
  readEspText(loc, posix.join(ENTRIES_DIR, fileName));

export function formatMiB(bytes: number): string {
  return `${Math.ceil(bytes / (1024 * 1024))} MiB`;
}
