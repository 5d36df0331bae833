/**
 * GRUB beside systemd-boot on a hybrid disk:
 *
 *   1. the BIOS boot code (grub-bios.ts): core.img built from the image's GRUB (else the
 *      host's) into the BIOS boot partition, boot.img into the MBR
 *   2. the menu: grub/grub.cfg regenerated from the BLS entries on the ESP, grub/grubenv
 *      carrying the boot counter (grub-menu.ts); each file under a temporary name, renamed
 *      into place (esp.ts writeEspText), grubenv first, so a cut leaves the old menu or a new
 *      menu whose counter is already in place
 *
 * On the booted system (ESP mounted at /boot) step 2 runs again whenever the BLS entries
 * change (finalisation, rollback, GC), on disks that have a GRUB menu only.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { pathExists } from '../core/fs-probe.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { debug, warn } from '../core/log.js';
import { DEFAULT_MENU_TIMEOUT_SECONDS, ENTRIES_DIR, LOADER_CONF_PATH, parseBlsEntry, parseEntryFileName, type EntryName } from './bls.js';
import { listBootEntries, listEspDirectory, readBootEntry, readEspText, writeEspText, type EspLocation } from './esp.js';
import { buildCoreImage, findGrubI386Pc, installGrubBootCode, GRUB_ESP_DIR, type BiosBootArea } from './grub-bios.js';
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

/** Our BLS entries on the ESP, as the menu reads them. */
async function readMenuEntries(loc: EspLocation): Promise<GrubMenuEntry[]> {
  const entries: GrubMenuEntry[] = [];
  for (const fileName of await listBootEntries(loc)) {
    const entry = parseBlsEntry(await readBootEntry(loc, fileName));
    entries.push({ name: parseEntryFileName(fileName)!, version: entry['version']?.[0] ?? '0', entry });
  }
  return entries;
}

async function readGrubEnv(loc: EspLocation): Promise<GrubEnv> {
  if (!(await listEspDirectory(loc, GRUB_ESP_DIR)).includes(posix.basename(GRUBENV_PATH))) return {};
  return parseGrubEnv(await readEspText(loc, GRUBENV_PATH));
}

/** Step 2 on an ESP written through mtools. */
export async function writeGrubMenu(loc: EspLocation, options: { timeoutSeconds: number }): Promise<void> {
  await withContext('Writing the GRUB menu', async () => {
    const entries = await readMenuEntries(loc);
    const cfg = renderGrubConfig({ entries, timeoutSeconds: options.timeoutSeconds });
    await writeEspText(loc, GRUBENV_PATH, renderGrubEnv(grubEnvForMenu(await readGrubEnv(loc), entries)));
    await writeEspText(loc, GRUB_CFG_PATH, cfg);
  });
}

/** The menu timeout systemd-boot uses (loader.conf `timeout N`), so both loaders wait alike. */
export function loaderConfTimeout(text: string): number {
  const m = /^\s*timeout\s+(\d+)\s*$/m.exec(text);
  return m ? Number(m[1]) : DEFAULT_MENU_TIMEOUT_SECONDS;
}

/**
 * Step 2 on a mounted ESP (`bootDir`, e.g. /boot): regenerates grub.cfg and grubenv from
 * loader/entries when the disk has a GRUB menu; false (nothing written) when it has none.
 * `without`: entries about to be removed, left out first so that the menu never names a
 * file that is gone (GC writes the menu, then deletes).
 */
export async function regenerateGrubMenuInDir(bootDir: string, without: (name: EntryName) => boolean = () => false): Promise<boolean> {
  if (!(await pathExists(join(bootDir, GRUB_CFG_PATH)))) return false;
  await withContext(`Regenerating the GRUB menu in ${bootDir}`, async () => {
    const entries: GrubMenuEntry[] = [];
    for (const fileName of (await readdir(join(bootDir, ENTRIES_DIR))).sort()) {
      const name = parseEntryFileName(fileName);
      if (!name || without(name)) continue;
      const entry = parseBlsEntry(await readFile(join(bootDir, ENTRIES_DIR, fileName), 'utf8'));
      entries.push({ name, version: entry['version']?.[0] ?? '0', entry });
    }
    const loaderConf = await readFile(join(bootDir, LOADER_CONF_PATH), 'utf8').catch(() => '');
    const cfg = renderGrubConfig({ entries, timeoutSeconds: loaderConfTimeout(loaderConf) });
    let env: GrubEnv = {};
    try {
      env = parseGrubEnv(await readFile(join(bootDir, GRUBENV_PATH), 'utf8'));
    } catch (err) {
      if (!(err instanceof UserError) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (err instanceof UserError) warn(`${join(bootDir, GRUBENV_PATH)} was not a GRUB environment block; writing a new one`);
    }
    await writeFileAtomic(join(bootDir, GRUBENV_PATH), renderGrubEnv(grubEnvForMenu(env, entries)));
    await writeFileAtomic(join(bootDir, GRUB_CFG_PATH), cfg);
  });
  return true;
}
