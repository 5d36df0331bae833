/**
 * The EFI system partition, one interface (`Esp`) over two ways of reaching it:
 *
 *   - espInImage: not mounted. `mkfs.fat` creates the FAT32 filesystem (in a file of its
 *     own, or at an offset inside a disk image) and mtools place and read files in it. The
 *     kernel on build machines may have no vfat driver, and CI containers may not mount at
 *     all. Install, build-disk and the ISO write it this way.
 *   - espInDirectory: mounted (`/boot` in the booted system), written with plain file
 *     operations, durably (core/durable-file.ts). The updates code writes it this way:
 *     writing the block device behind a mounted filesystem would be overwritten by (or
 *     corrupt) the kernel's cached view of it.
 *
 * Every write goes under a temporary name and is renamed into place, so a reader (systemd-boot
 * lists only `*.conf` and `*.efi`, GRUB reads grub.cfg) never sees a half-written file under
 * the real name. What goes on the ESP is written once, against `Esp`, for both.
 *
 * Layout (DESIGN.md "Boot protocol"):
 *   EFI/BOOT/BOOTX64.EFI, EFI/systemd/systemd-bootx64.efi   systemd-boot
 *   loader/loader.conf, loader/entries/bootc-*.conf          menu and BLS entries
 *   bootc/<id>/vmlinuz, bootc/<id>/initrd.img                 per deployment
 *   EFI/Linux/bootc-<stateroot>-<id>+3.efi                    or its UKI (Type #2)
 *   loader/keys/                                              Secure Boot keys from the image
 */
import { access, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { run } from '../core/exec.js';
import { UserError, invariant, withContext } from '../core/errors.js';
import { copyFileDurably, finalNameOf, fsyncDir, tempNameFor, writeFileAtomic } from '../core/durable-file.js';
import { pathExists } from '../core/fs-probe.js';
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

/** One file from the host onto the ESP, replacing what is there. */
export interface EspFile {
  /** Path on the ESP, e.g. `bootc/d1/vmlinuz`. */
  path: string;
  hostPath: string;
}

/** The ESP, mounted or not. Paths are relative to its root (`loader/loader.conf`). */
export interface Esp {
  /** For messages: the image (and offset) or the directory. */
  readonly where: string;
  /**
   * Copies host files, creating directories. On a mounted ESP each goes under a temporary
   * name and is renamed; on one not mounted (being built) each is copied in place, which
   * keeps a short name's lower case (mtools' rename loses it).
   */
  copyIn(files: readonly EspFile[]): Promise<void>;
  /** One file under a temporary name, then renamed, both ways (a UKI: systemd-boot lists `*.efi`). */
  copyInAtomically(file: EspFile): Promise<void>;
  /** Writes a text file the same way. */
  writeText(path: string, text: string): Promise<void>;
  /** A file's text, or null when there is no such file. */
  readText(path: string): Promise<string | null>;
  /**
   * Whether a file or directory is there. FAT matches names without regard to case, and so
   * does this: a name `list` returns in upper case (a short name mtools renamed) is found.
   */
  exists(path: string): Promise<boolean>;
  /** Names (not paths) in a directory; none if it does not exist. */
  list(dir: string): Promise<string[]>;
  /** Removes a file; nothing if it is not there. */
  remove(path: string): Promise<void>;
}

/** mtools' "image@@offset" drive syntax. */
const drive = (loc: EspLocation): string => (loc.offsetBytes === 0 ? loc.image : `${loc.image}@@${loc.offsetBytes}`);
const mtoolsPath = (path: string): string => `::/${path.replace(/^\/+/, '')}`;
/** mtools refuse to work on an image with an "unusual" geometry without this. */
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' } as const;

/** An ESP that is not mounted: a FAT filesystem in a file or a device, at an offset. */
export function espInImage(loc: EspLocation): Esp {
  const mtools = (description: string, argv: [string, ...string[]], okExitCodes?: number[]) =>
    run({ description, argv, env: MTOOLS_ENV, stdin: '', ...(okExitCodes ? { okExitCodes } : {}) });
  const exists = async (path: string): Promise<boolean> =>
    (await mtools(`Looking for ${path} on the ESP`, ['mdir', '-b', '-i', drive(loc), mtoolsPath(path)], [1])).exitCode === 0;
  const ensureDirectory = async (dir: string): Promise<void> => {
    const parts = dir.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join('/');
      if (!(await exists(path))) await mtools(`Creating ${path} on the ESP`, ['mmd', '-i', drive(loc), mtoolsPath(path)]);
    }
  };
  const copyAtomically = async (hostPath: string, path: string): Promise<void> => {
    const dir = posix.dirname(path);
    const tmp = posix.join(dir, posix.basename(tempNameFor(path)));
    await ensureDirectory(dir);
    await mtools(`Copying ${hostPath} to ${path} on the ESP`, ['mcopy', '-o', '-D', 'o', '-i', drive(loc), hostPath, mtoolsPath(tmp)]);
    await mtools(`Renaming ${posix.basename(tmp)} to ${posix.basename(path)} on the ESP`, ['mren', '-D', 'o', '-i', drive(loc), mtoolsPath(tmp), mtoolsPath(path)]);
  };
  return {
    where: loc.offsetBytes === 0 ? loc.image : `${loc.image} at byte ${loc.offsetBytes}`,
    async copyIn(files) {
      for (const file of files) {
        await ensureDirectory(posix.dirname(file.path));
        await mtools(`Copying ${file.hostPath} to ${file.path} on the ESP`, ['mcopy', '-o', '-D', 'o', '-i', drive(loc), file.hostPath, mtoolsPath(file.path)]);
      }
    },
    copyInAtomically: (file) => copyAtomically(file.hostPath, file.path),
    async writeText(path, text) {
      await withContext(`Writing ${path} on the ESP`, async () => {
        const local = await mkdtemp(join(tmpdir(), 'bootc-esp-'));
        try {
          await writeFile(join(local, 'content'), text);
          await copyAtomically(join(local, 'content'), path);
        } finally {
          await rm(local, { recursive: true, force: true });
        }
      });
    },
    exists,
    async readText(path) {
      if (!(await exists(path))) return null;
      return (await mtools(`Reading ${path} from the ESP`, ['mcopy', '-n', '-i', drive(loc), mtoolsPath(path), '-'])).stdout;
    },
    async list(dir) {
      if (!(await exists(dir))) return [];
      const r = await mtools(`Listing ${dir} on the ESP`, ['mdir', '-b', '-i', drive(loc), mtoolsPath(dir)]);
      return r.stdout
        .split('\n')
        .filter(Boolean)
        // `mdir -b` prints full paths, a directory's with a trailing slash.
        .map((line) => line.replace(/\/$/, ''))
        .map((line) => line.slice(line.lastIndexOf('/') + 1))
        .filter((name) => name !== '.' && name !== '..');
    },
    async remove(path) {
      if (await exists(path)) await mtools(`Removing ${path} from the ESP`, ['mdel', '-i', drive(loc), mtoolsPath(path)]);
    },
  };
}

/** The ESP mounted at `dir` (e.g. /boot); every write durable, the renamed file fsynced too (FAT). */
export function espInDirectory(dir: string): Esp {
  const at = (path: string): string => join(dir, path);
  const isMissing = (err: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');
  const copyIn = async (file: EspFile): Promise<void> => {
    await mkdir(posix.dirname(at(file.path)), { recursive: true });
    await copyFileDurably(file.hostPath, at(file.path));
  };
  return {
    where: dir,
    async copyIn(files) {
      for (const file of files) await copyIn(file);
    },
    copyInAtomically: copyIn,
    async writeText(path, text) {
      await mkdir(posix.dirname(at(path)), { recursive: true });
      await writeFileAtomic(at(path), text);
    },
    // The kernel's vfat driver looks names up without regard to case.
    exists: (path) => pathExists(at(path)),
    async readText(path) {
      try {
        return await readFile(at(path), 'utf8');
      } catch (err) {
        if (isMissing(err)) return null;
        throw err;
      }
    },
    async list(path) {
      try {
        return await readdir(at(path));
      } catch (err) {
        if (isMissing(err)) return [];
        throw err;
      }
    },
    async remove(path) {
      try {
        await rm(at(path));
      } catch (err) {
        if (isMissing(err)) return;
        throw err;
      }
      await fsyncDir(posix.dirname(at(path)));
    },
  };
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
export async function installSystemdBoot(esp: Esp, deploymentDir: string, signing?: SigningKey): Promise<void> {
  const binary = await findSystemdBoot(deploymentDir);
  if (!signing) {
    await esp.copyIn([
      { path: FALLBACK_LOADER_PATH, hostPath: binary },
      { path: SYSTEMD_BOOT_PATH, hostPath: binary },
    ]);
    return;
  }
  const work = await mkdtemp(join(tmpdir(), 'bootc-sign-'));
  try {
    const signed = join(work, 'systemd-bootx64.efi');
    await signPe(binary, signed, signing);
    await esp.copyIn([
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
export async function installSecureBootKeys(esp: Esp, deploymentDir: string): Promise<string[]> {
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
  await esp.copyIn(files);
  return files.map((f) => f.path);
}

/** File names of our UKIs in EFI/Linux/ (foreign UKIs left out). */
export async function listUkis(esp: Esp): Promise<string[]> {
  return (await esp.list(UKI_DIR)).filter((name) => parseUkiFileName(name) !== null).sort();
}

/**
 * Garbage collection of UKIs: removes our UKIs whose deployment is not in `keep`, and the
 * temporary files of an interrupted copy of one. Returns the removed names.
 */
export async function removeStaleUkis(esp: Esp, keep: ReadonlyArray<{ stateroot: string; deploymentId: string }>): Promise<string[]> {
  const names = await esp.list(UKI_DIR);
  const stale = [...staleUkiFileNames(names, keep), ...names.filter((n) => /^bootc-.*\.efi$/.test(finalNameOf(n) ?? ''))];
  for (const name of stale) await esp.remove(posix.join(UKI_DIR, name));
  return stale;
}

export async function writeLoaderConf(esp: Esp, conf: LoaderConf = {}): Promise<void> {
  await esp.writeText(LOADER_CONF_PATH, renderLoaderConf(conf));
}

/** Writes (or rewrites) one of our BLS entries. */
export async function writeBootEntry(esp: Esp, fileName: string, entry: BlsEntry): Promise<void> {
  invariant(parseEntryFileName(fileName) !== null, `not a bootc entry file name: ${fileName}`);
  await esp.writeText(posix.join(ENTRIES_DIR, fileName), renderBlsEntry(entry));
}

/** File names of our BLS entries on the ESP (foreign entries left out). */
export async function listBootEntries(esp: Esp): Promise<string[]> {
  const names = await esp.list(ENTRIES_DIR);
  return names.filter((name) => parseEntryFileName(name) !== null).sort();
}

export async function readBootEntry(esp: Esp, fileName: string): Promise<string> {
  const text = await esp.readText(posix.join(ENTRIES_DIR, fileName));
  if (text === null) throw new UserError(`${esp.where} has no boot entry ${fileName}`, { hint: 'list the entries in loader/entries/' });
  return text;
}

export function formatMiB(bytes: number): string {
  return `${Math.ceil(bytes / (1024 * 1024))} MiB`;
}
