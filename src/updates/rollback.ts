/**
 * `bootc rollback` (upstream §1.4): the next boot uses the rollback deployment; a staged
 * deployment is dropped; running it again restores the previous order.
 *
 * The entry that should boot next gets a `version` above every other entry. That is one
 * atomic rewrite (temp name, rename) of one entry, so a crash leaves either the old or the
 * new order, never a tie. The booted deployment's entry is rewritten the same way when the
 * order is put back. A UKI carries its order in its `.osrel`: that is rewritten in place the
 * same way (uki-boot-dir.ts); a sealed or signed UKI cannot be reordered without breaking it,
 * so rollback refuses it and says how to boot the other deployment once.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { ENTRIES_DIR, parseBlsEntry, type BlsEntry } from '../boot/bls.js';
import { HOST_LOCATIONS, loadDeployments, requireBooted, type EntryOnEsp, type SysrootLocations } from './deployments.js';
import { updateLockPath, withUpdateLock } from '../core/lock-file.js';
import { setUkiBootOrder } from '../boot/uki-boot-dir.js';
import { dropStaged } from './cleanup.js';
import { espInDirectory, writeBootEntry } from '../boot/esp.js';
import { regenerateGrubMenu } from '../boot/grub-boot.js';

export interface RollbackOptions {
  locations?: SysrootLocations;
  command?: string;
}

export interface RollbackOutcome {
  nextBoot: 'rollback' | 'current';
  /** The staged deployment that was dropped. */
  droppedStaged: string | null;
  text: string;
}

async function readEntry(boot: string, entry: EntryOnEsp): Promise<BlsEntry> {
  const path = join(boot, ENTRIES_DIR, entry.fileName);
  const parsed = parseBlsEntry(await readFile(path, 'utf8'));
  const field = (key: string): string => {
    const value = parsed[key]?.[0];
    if (value === undefined) {
      throw new UserError(`boot entry ${path} has no ${key} line`, { hint: 'the entry is damaged; reinstall or fix it by hand' });
    }
    return value;
  };
  return {
    title: field('title'),
    version: field('version'),
    sortKey: parsed['sort-key']?.[0] ?? 'bootc',
    linux: field('linux'),
    initrd: field('initrd'),
    options: field('options'),
  };
}

const ONE_SHOT_HINT = 'choose the other deployment in the systemd-boot menu at the next boot (or `bootctl set-oneshot <entry>`); it stays installed';

async function reorderUki(boot: string, entry: EntryOnEsp, bootOrder: number): Promise<void> {
  if (entry.fixedOrder) {
    throw new UserError(`${entry.fileName} is the image's own (sealed) UKI: its boot order is fixed in its signed .osrel`, { hint: ONE_SHOT_HINT });
  }
  try {
    await setUkiBootOrder(boot, entry.fileName, bootOrder);
  } catch (err) {
    // Signed: rewriting the order would drop the signature, and there is no key here.
    if (err instanceof UserError) throw new UserError(err.message, { hint: ONE_SHOT_HINT });
    throw err;
  }
}

export async function rollback(options: RollbackOptions = {}): Promise<RollbackOutcome> {
  const loc = options.locations ?? HOST_LOCATIONS;
  // Checked before the lock too, so a system not deployed by bootc gets no /sysroot/bootc.
  requireBooted(await loadDeployments(loc));
  return withUpdateLock(updateLockPath(loc.sysroot), options.command ?? 'bootc rollback', async () => {
    const view = await loadDeployments(loc);
    const booted = requireBooted(view);
    const rollbackDeployment = view.rollback;
    if (!rollbackDeployment?.entry) {
      throw new UserError('No rollback deployment to switch to', {
        hint: 'a rollback deployment exists after the first `bootc upgrade` or `bootc switch` has been booted',
      });
    }
    if (!booted.entry) {
      throw new UserError(`the booted deployment ${booted.ref.stateroot}/${booted.ref.id} has no boot entry`, {
        hint: 'its entry was removed from /boot/loader/entries; reinstall, or upgrade to create a new one',
      });
    }
    let droppedStaged: string | null = null;
    if (view.staged) {
      await dropStaged(loc, view.staged.ref);
      droppedStaged = view.staged.ref.id;
    }
    // Queued already: put the booted deployment first again.
    const first = view.rollbackQueued ? booted.entry : rollbackDeployment.entry;
    await withContext(`Reordering the boot entries (${first.fileName} first)`, async () => {
      if (first.kind === 'uki') {
        await reorderUki(loc.boot, first, view.nextVersion);
        return;
      }
      const entry = await readEntry(loc.boot, first);
      await writeBootEntry(espInDirectory(loc.boot), first.fileName, { ...entry, version: String(view.nextVersion) });
    });
    await regenerateGrubMenu(espInDirectory(loc.boot));
    const nextBoot = view.rollbackQueued ? 'current' : 'rollback';
    const text =
      (view.rollbackQueued ? 'notice: Reverting queued rollback state\n' : '') +
      `Next boot: ${nextBoot === 'rollback' ? 'rollback deployment' : 'current deployment'}\n`;
    return { nextBoot, droppedStaged, text };
  });
}
