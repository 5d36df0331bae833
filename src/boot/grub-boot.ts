/**
 * GRUB beside systemd-boot on a hybrid disk:
 *
 *   1. the BIOS boot code (grub-bios.ts): core.img built from the image's GRUB (else the
 *      host's) into the BIOS boot partition, boot.img into the MBR
 *   2. the menu: grub/grub.cfg regenerated from the BLS entries on the ESP, grub/grubenv
 *      carrying the boot counter (grub-menu.ts); each file under a temporary name, renamed
 *      into place (esp.ts writeEspText), grubenv first, so a cut leaves the old menu or a new
 *      menu whose counter is already in place
 */
import { join, posix } from 'node:path';
import { withContext } from '../core/errors.js';
import { debug } from '../core/log.js';
import { parseBlsEntry, parseEntryFileName } from './bls.js';
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
