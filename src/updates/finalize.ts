/**
 * Finalising a staged deployment at shutdown (`bootc internals finalize-staged`, run as the
 * `ExecStop=` of bootc-finalize-staged.service, while /sysroot and /boot are still mounted):
 *
 *   1. three-way /etc merge: old = booted deployment's /usr/etc, new = staged deployment's
 *      /usr/etc, current = the live /etc; written to a new directory beside the staged /etc,
 *      then renamed over it
 *   2. the staged entry, with a `version` above every entry present, written under a temp
 *      name and renamed into loader/entries: from that rename on it is the default. A UKI
 *      was written at upgrade as EFI/Linux/<name>.staged with the boot order that was
 *      highest then; if an entry has passed it since (a rollback in between), its order is
 *      raised in place first, then it is renamed to <name>
 *   3. the staged record removed
 *
 * A crash before step 2's rename leaves the entries untouched, so the previous default
 * boots, and the record is still there for the next shutdown to try again (step 1 reads only
 * its three inputs, so repeating it is harmless). A crash between 2 and 3 boots the new
 * deployment; the leftover record is recognised by its entry being present and just removed.
 */
import { readFile, rename, rm } from 'node:fs/promises';
import { pathExists } from '../core/fs-probe.js';
import { join } from 'node:path';
import { invariant, UserError, withContext } from '../core/errors.js';
import { info, warn } from '../core/log.js';
import { sysrootPaths } from '../deploy/paths.js';
import { describeEtcConflict } from './etc-merge.js';
import { mergeEtc } from './etc-merge-apply.js';
import { HOST_LOCATIONS, loadDeployments, stagedBootFileName, type DeploymentRef, type SysrootLocations } from './deployments.js';
import { collectGarbage } from './cleanup.js';
import { acquireUpdateLock, updateLockPath } from '../core/lock-file.js';
import { recordEtcConflicts } from './update-records.js';
import { espInDirectory, writeBootEntry } from '../boot/esp.js';
import { regenerateGrubMenu } from '../boot/grub-boot.js';
import { finalizeStagedUki, setUkiBootOrder, STAGED_UKI_SUFFIX } from '../boot/uki-boot-dir.js';
import { UKI_DIR } from '../boot/uki-entry.js';
import { bootOrderOfOsrel } from '../uki/boot-order.js';
import { parsePe, sectionData } from '../uki/pe.js';
import { fsyncDir } from '../core/durable-file.js';

export interface FinalizeOptions {
  locations?: SysrootLocations;
  /** The live /etc (the booted deployment's, as mounted at /etc). */
  liveEtc?: string;
}

export type FinalizeOutcome =
  | { kind: 'nothing-staged' }
  | { kind: 'download-only'; id: string }
  | { kind: 'locked'; why: string }
  | { kind: 'finalized'; id: string; entryFileName: string; conflicts: string[] };

/**
 * Under the update lock, so an upgrade that is still replacing the staged deployment is
 * never finalised half-way: if one holds the lock, nothing is finalised and the current
 * default boots again.
 */
export async function finalizeStaged(options: FinalizeOptions = {}): Promise<FinalizeOutcome> {
  const loc = options.locations ?? HOST_LOCATIONS;
  // Nothing staged: leave at once, writing nothing (not even the lock), so a shutdown never
  // waits on the filesystem for us. A record written after this look waits for the next
  // shutdown, as one whose upgrade holds the lock does.
  if (!(await pathExists(sysrootPaths(loc.sysroot).staged))) return { kind: 'nothing-staged' };
  let lock;
  try {
    lock = await acquireUpdateLock(updateLockPath(loc.sysroot), 'bootc internals finalize-staged');
  } catch (err) {
    if (err instanceof UserError) return { kind: 'locked', why: err.message };
    throw err;
  }
  try {
    const outcome = await finalizeLocked(loc, options);
    if (outcome.kind === 'finalized') {
      // The new default and the deployment booted now (the rollback from the next boot on)
      // stay; the previous rollback and everything only it used go.
      const view = await loadDeployments(loc);
      const first = view.order[0];
      const keep: DeploymentRef[] = [
        ...(view.booted ? [view.booted.ref] : []),
        ...(first ? [{ stateroot: first.name.stateroot, id: first.name.deploymentId }] : []),
      ];
      try {
        const pruned = await collectGarbage(loc, { keep });
        if (pruned.removed.length > 0) info(`Removed deployments: ${pruned.removed.join(', ')}`);
      } catch (err) {
        warn(`old deployments were not removed: ${(err as Error).message}`);
      }
    }
    return outcome;
  } finally {
    await lock.release();
  }
}

async function finalizeLocked(loc: SysrootLocations, options: FinalizeOptions): Promise<FinalizeOutcome> {
  const view = await loadDeployments(loc);
  const staged = view.staged;
  const paths = sysrootPaths(loc.sysroot);
  if (!staged) {
    // A record whose deployment is gone (discarded, incomplete) cannot be finalised.
    await rm(paths.staged, { force: true });
    return { kind: 'nothing-staged' };
  }
  const rec = view.stagedRecord;
  invariant(rec !== null, 'a staged deployment without its record');
  if (rec.downloadOnly) {
    info(`Staged deployment ${staged.ref.stateroot}/${staged.ref.id} was downloaded only; apply it with \`bootc upgrade --from-downloaded\``);
    return { kind: 'download-only', id: staged.ref.id };
  }
  if (staged.entry) {
    await rm(paths.staged, { force: true });
    return { kind: 'finalized', id: staged.ref.id, entryFileName: staged.entry.fileName, conflicts: [] };
  }
  return withContext(`Finalizing staged deployment ${staged.ref.stateroot}/${staged.ref.id}`, async () => {
    info(`Finalizing staged deployment ${staged.ref.stateroot}/${staged.ref.id}`);
    const dir = paths.deployment(staged.ref.stateroot, staged.ref.id);
    let conflicts: string[] = [];
    if (view.booted) {
      const bootedDir = paths.deployment(view.booted.ref.stateroot, view.booted.ref.id);
      const merged = join(dir, '.etc-merged');
      const previous = join(dir, '.etc-previous');
      await rm(merged, { recursive: true, force: true });
      await rm(previous, { recursive: true, force: true });
      const outcome = await mergeEtc(
        { oldDefault: join(bootedDir, 'usr', 'etc'), newDefault: join(dir, 'usr', 'etc'), current: options.liveEtc ?? '/etc' },
        merged,
      );
      conflicts = outcome.conflicts.map(describeEtcConflict);
      for (const c of conflicts) warn(`/etc merge: ${c}`);
      if (await pathExists(join(dir, 'etc'))) await rename(join(dir, 'etc'), previous);
      await rename(merged, join(dir, 'etc'));
      await fsyncDir(dir);
      await rm(previous, { recursive: true, force: true });
    } else {
      warn('no booted deployment: the staged deployment keeps its image /etc');
    }
    await recordEtcConflicts(loc.sysroot, staged.ref.stateroot, staged.ref.id, conflicts);
    if (rec.kind === 'uki') {
      await finalizeUki(loc.boot, rec.ukiFileName, view.nextVersion);
    } else {
      await writeBootEntry(espInDirectory(loc.boot), rec.entryFileName, { ...rec.entry, version: String(view.nextVersion) });
    }
    // Hybrid disks: GRUB's menu follows the entries (a cut before this boots the previous default under BIOS).
    await regenerateGrubMenu(espInDirectory(loc.boot));
    await rm(paths.staged, { force: true });
    await fsyncDir(paths.bootcDir);
    return { kind: 'finalized', id: staged.ref.id, entryFileName: stagedBootFileName(rec), conflicts };
  });
}

/**
 * The staged UKI becomes an entry that boots before all present: its order was fixed at
 * staging, so it is raised to `nextVersion` when something else reached it since. A sealed
 * UKI's order is its own and stays.
 */
async function finalizeUki(boot: string, ukiFileName: string, nextVersion: number): Promise<void> {
  const stagedName = `${ukiFileName}${STAGED_UKI_SUFFIX}`;
  const stagedPath = join(boot, UKI_DIR, stagedName);
  if (!(await pathExists(stagedPath))) {
    throw new UserError(`the staged UKI ${stagedPath} is missing`, { hint: 'run `bootc upgrade` again to stage the update anew' });
  }
  const order = await ukiBootOrder(stagedPath);
  if (order !== null && order < nextVersion) await setUkiBootOrder(boot, stagedName, nextVersion);
  await finalizeStagedUki(boot, ukiFileName);
}

/** The `.osrel` boot order of a UKI file; null when it is not ordered by bootc (sealed). */
async function ukiBootOrder(path: string): Promise<number | null> {
  const bytes = await readFile(path);
  const osrel = parsePe(bytes, path).sections.find((s) => s.name === '.osrel');
  return osrel ? bootOrderOfOsrel(Buffer.from(sectionData(bytes, osrel)).toString('utf8')) : null;
}
