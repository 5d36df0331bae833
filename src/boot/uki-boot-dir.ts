/**
 * What only the updates code does to UKIs, on the mounted ESP (`/boot` in the booted
 * system; esp.ts says why it is written with plain file operations there). Installing a UKI
 * and its garbage collection go through `Esp` (esp.ts, deployment-boot.ts).
 *
 *   - stage:     copy the UKI to EFI/Linux/<name>.staged (systemd-boot lists only *.efi)
 *   - finalize:  rename it to <name>: from that rename on it is an entry, and the default
 *                if its .osrel boot order is the highest
 *   - reorder:   rewrite a UKI's boot order in place (rollback), re-signing when asked
 *   - read:      our UKIs with their boot order, for status and rollback
 *   - GC:        removeStaleUkis (esp.ts)
 *
 * Every write is durable (core/durable-file.ts), the renamed file fsynced too (FAT).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { renameDurably, replaceFile } from '../core/durable-file.js';
import { parsePe, sectionData } from '../uki/pe.js';
import { bootOrderOfOsrel, withBootOrder } from '../uki/boot-order.js';
import { signPe, type SigningKey } from '../uki/uki.js';
import { parseOsRelease, type EntryName } from './bls.js';
import { parseUkiFileName, UKI_DIR } from './uki-entry.js';
import { espInDirectory } from './esp.js';

export const STAGED_UKI_SUFFIX = '.staged';

/** Copies a prepared UKI (UkiBoot.files[0].hostPath) to EFI/Linux/<ukiFileName>.staged. */
export async function stageUkiInDir(bootDir: string, ukiFileName: string, hostPath: string): Promise<string> {
  const path = posix.join(UKI_DIR, `${ukiFileName}${STAGED_UKI_SUFFIX}`);
  await withContext(`Staging the UKI ${ukiFileName} in ${join(bootDir, UKI_DIR)}`, () => espInDirectory(bootDir).copyIn([{ path, hostPath }]));
  return join(bootDir, path);
}

/** Makes a staged UKI an entry. */
export async function finalizeStagedUki(bootDir: string, ukiFileName: string): Promise<void> {
  const dir = join(bootDir, UKI_DIR);
  await withContext(`Finalising the UKI ${ukiFileName}`, async () => {
    await renameDurably(join(dir, `${ukiFileName}${STAGED_UKI_SUFFIX}`), join(dir, ukiFileName));
  });
}

export interface UkiOnEsp {
  fileName: string;
  name: EntryName;
  /** IMAGE_VERSION when the UKI is ordered by bootc, as a BLS `version` string; else null. */
  version: string | null;
  title: string | null;
}

/** Our UKIs in EFI/Linux/ with what systemd-boot orders them by. */
export async function readUkisInDir(bootDir: string): Promise<UkiOnEsp[]> {
  const dir = join(bootDir, UKI_DIR);
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: UkiOnEsp[] = [];
  for (const fileName of names.sort()) {
    const name = parseUkiFileName(fileName);
    if (!name) continue;
    const path = join(dir, fileName);
    const bytes = await readFile(path);
    const osrelSection = parsePe(bytes, path).sections.find((s) => s.name === '.osrel');
    const osrel = osrelSection ? Buffer.from(sectionData(bytes, osrelSection)).toString('utf8') : '';
    const order = bootOrderOfOsrel(osrel);
    out.push({ fileName, name, version: order === null ? null : String(order), title: parseOsRelease(osrel)['PRETTY_NAME'] ?? null });
  }
  return out;
}

/**
 * Rollback for UKIs: gives `fileName` (in EFI/Linux/) the boot order `bootOrder`. A signed
 * UKI is signed again with `signing`, and refused without it (an unsigned UKI would no
 * longer boot under Secure Boot).
 */
export async function setUkiBootOrder(bootDir: string, fileName: string, bootOrder: number, signing?: SigningKey): Promise<void> {
  const path = join(bootDir, UKI_DIR, fileName);
  await withContext(`Setting the boot order of ${path} to ${bootOrder}`, async () => {
    const reordered = withBootOrder(await readFile(path), path, bootOrder);
    if (reordered.signatureRemoved && !signing) {
      throw new UserError(`${path} is signed for Secure Boot; reordering it needs the signing key`, {
        hint: 'pass the key and certificate it was signed with',
      });
    }
    await replaceFile(path, async (tmp) => {
      if (!reordered.signatureRemoved || !signing) {
        await writeFile(tmp, reordered.bytes);
        return;
      }
      const work = await mkdtemp(join(tmpdir(), 'bootc-resign-'));
      try {
        await writeFile(join(work, 'unsigned.efi'), reordered.bytes);
        await signPe(join(work, 'unsigned.efi'), join(work, 'signed.efi'), signing);
        await writeFile(tmp, await readFile(join(work, 'signed.efi')));
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    });
  });
}
