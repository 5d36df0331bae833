/**
 * GRUB beside systemd-boot on a hybrid disk:
 *
 *   1. the BIOS boot code (grub-bios.ts): core.img built from the image's GRUB (else the
 *      host's) into the BIOS boot partition, boot.img into the MBR
 *   2. the menu: grub/grub.cfg regenerated from the BLS entries on the ESP, grub/grubenv
 *      carrying the boot counter (grub-menu.ts); each file under a temporary name, renamed
 *      into place (esp.ts), grubenv first, so a cut leaves the old menu or a new menu whose
 *      counter is already in place
 *
 * On the booted system (ESP mounted at /boot) step 2 runs again whenever the BLS entries
 * change (finalisation, rollback, GC), on disks that have a GRUB menu only.
 */
import { join } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { debug, warn } from '../core/log.js';
import { DEFAULT_MENU_TIMEOUT_SECONDS, LOADER_CONF_PATH, parseBlsEntry, parseEntryFileName, type EntryName } from './bls.js';
import { listBootEntries, readBootEntry, type Esp } from './esp.js';
import { buildCoreImage, findGrubI386Pc, installGrubBootCode, type BiosBootArea } from './grub-bios.js';
import { GRUB_CFG_PATH, GRUBENV_PATH, grubEnvForMenu, parseGrubEnv, renderGrubConfig, renderGrubEnv, type GrubEnv, type GrubMenuEntry } from './grub-menu.js';

export interface GrubBiosTarget {
  /** The disk image file (or whole-disk device), partition table already written. */
  disk: string;
  biosBoot: BiosBootArea;
  espPartitionNumber: number;
  /** The deployment whose /usr/lib/grub/i386-pc is preferred over the host's. */
  deploymentDir: string;
  /** A scratch directory for core.img. */
  workDir: string;
}

/** Step 1. Returns where the GRUB binaries came from, for the build log. */
export async function installGrubBiosBootCode(target: GrubBiosTarget): Promise<'image' | 'host'> {
  return withContext('Installing GRUB for BIOS boot', async () => {
    const grub = await findGrubI386Pc(target.deploymentDir);
    debug(`GRUB i386-pc from the ${grub.from}: ${grub.dir}`);
    const coreImg = join(target.workDir, 'core.img');
    await buildCoreImage(grub.dir, coreImg, target.espPartitionNumber);
    await installGrubBootCode({ target: target.disk, biosBoot: target.biosBoot, coreImg, bootImg: join(grub.dir, 'boot.img') });
    return grub.from;
  });
}

/** Our BLS entries on the ESP, as the menu reads them, less those `without` names. */
async function readMenuEntries(esp: Esp, without: (name: EntryName) => boolean): Promise<GrubMenuEntry[]> {
  const entries: GrubMenuEntry[] = [];
  for (const fileName of await listBootEntries(esp)) {
    const name = parseEntryFileName(fileName)!;
    if (without(name)) continue;
    const entry = parseBlsEntry(await readBootEntry(esp, fileName));
    entries.push({ name, version: entry['version']?.[0] ?? '0', entry });
  }
  return entries;
}

/** The environment block's variables; none when there is none, or it is not one (replaced). */
async function readGrubEnv(esp: Esp): Promise<GrubEnv> {
  const text = await esp.readText(GRUBENV_PATH);
  if (text === null) return {};
  try {
    return parseGrubEnv(text);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    warn(`${GRUBENV_PATH} on ${esp.where} was not a GRUB environment block; writing a new one`);
    return {};
  }
}

/** The menu timeout systemd-boot uses (loader.conf `timeout N`), so both loaders wait alike. */
export function loaderConfTimeout(text: string): number {
  const m = /^\s*timeout\s+(\d+)\s*$/m.exec(text);
  return m ? Number(m[1]) : DEFAULT_MENU_TIMEOUT_SECONDS;
}

export interface GrubMenuOptions {
  /** Default: loader.conf's timeout, so both loaders wait alike. */
  timeoutSeconds?: number;
  /** Entries about to be removed: left out first, so the menu never names a file that is gone. */
  without?: (name: EntryName) => boolean;
}

/** Step 2: grub.cfg and grubenv from loader/entries. */
export async function writeGrubMenu(esp: Esp, options: GrubMenuOptions = {}): Promise<void> {
  await withContext(`Writing the GRUB menu on ${esp.where}`, async () => {
    const entries = await readMenuEntries(esp, options.without ?? (() => false));
    const timeoutSeconds = options.timeoutSeconds ?? loaderConfTimeout((await esp.readText(LOADER_CONF_PATH)) ?? '');
    await esp.writeText(GRUBENV_PATH, renderGrubEnv(grubEnvForMenu(await readGrubEnv(esp), entries)));
    await esp.writeText(GRUB_CFG_PATH, renderGrubConfig({ entries, timeoutSeconds }));
  });
}

/**
 * Step 2 again after the entries changed (finalisation, rollback, GC), on a disk that has a
 * GRUB menu; false (nothing written) on one that has none.
 */
export async function regenerateGrubMenu(esp: Esp, without?: (name: EntryName) => boolean): Promise<boolean> {
  // Not list().includes(): mtools' rename leaves grub.cfg a short name, listed as GRUB.CFG.
  if (!(await esp.exists(GRUB_CFG_PATH))) return false;
  await writeGrubMenu(esp, without ? { without } : {});
  return true;
}
