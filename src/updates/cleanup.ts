/**
 * Garbage collection of deployments after an update (upstream: keep booted, rollback,
 * staged and pinned; everything else goes). The caller names what it keeps; pinned
 * deployments are kept always.
 *
 * A deployment is removed in the reverse of the order it was made, so a crash at any point
 * leaves nothing that points at something missing:
 *
 *   1. its boot entry (from then on nothing boots it)
 *   2. its kernel and initrd on the ESP
 *   3. its origin record (from then on it is no longer a deployment, only a directory)
 *   4. its checkout and /etc-conflicts record
 *
 * A UKI deployment's entry is its UKI in EFI/Linux/ (step 1 and 2 at once). Under the update
 * lock also: `.staged` UKIs and sealed-UKI selector records of deployments that are gone.
 *
 * Then the store drops the images no remaining deployment uses and `bootc switch --retain`
 * did not retain, their layers and objects.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readdirOrEmpty } from '../core/fs-probe.js';
import { debug, warn } from '../core/log.js';
import { ENTRIES_DIR, type EntryName } from '../boot/bls.js';
import { regenerateGrubMenu } from '../boot/grub-boot.js';
import { GRUB_ESP_DIR } from '../boot/grub-bios.js';
import { espInDirectory, removeStaleUkis } from '../boot/esp.js';
import { newUkiFileName, parseUkiFileName, UKI_DIR } from '../boot/uki-entry.js';
import { STAGED_UKI_SUFFIX } from '../boot/uki-boot-dir.js';
import { SELECTORS_DIR } from '../uki/selector.js';
import { deploymentBootDir } from '../boot/deployment-boot.js';
import type { Origin } from '../deploy/origin.js';
import { sysrootPaths } from '../deploy/paths.js';
import { gcStore, formatGcSummary } from '../store/gc.js';
import { finalNameOf, fsyncDir, removeTempFiles } from '../core/durable-file.js';
import { readRetainedImages } from './update-records.js';
import { loadSysrootState, type DeploymentRef, type EntryOnEsp, type SysrootLocations } from './deployments.js';
import { removeTree } from '../core/remove-tree.js';

export interface PruneOptions {
  /** Deployments that stay; every other deployment with an origin goes. */
  keep: readonly DeploymentRef[];
  /**
   * Also remove checkouts without an origin and ESP directories of no deployment: leftovers
   * of a crashed update. Only under the update lock, where no update is half-way through
   * making them.
   */
  leftovers?: boolean;
}

export interface PruneResult {
  removed: string[];
  leftoversRemoved: string[];
  /** The deployments left, whose images the store keeps. */
  remaining: Origin[];
}

const key = (ref: DeploymentRef): string => `${ref.stateroot}/${ref.id}`;

/** `bootc-<stateroot>-<id>….efi.staged` (or the temporary file of an interrupted copy): whose it is. */
function stagedUkiName(fileName: string): EntryName | null {
  const m = /^(.*\.efi)\.staged$/.exec(finalNameOf(fileName) ?? fileName);
  return m ? parseUkiFileName(m[1]!) : null;
}

/**
 * One deployment gone, in the order above. `entries` are its boot entries (none for a staged
 * deployment, whose UKI, if any, still carries the `.staged` suffix).
 */
export async function removeDeployment(loc: SysrootLocations, ref: DeploymentRef, entries: readonly EntryOnEsp[] = []): Promise<void> {
  const paths = sysrootPaths(loc.sysroot);
  for (const entry of entries) await rm(join(loc.boot, entry.kind === 'uki' ? UKI_DIR : ENTRIES_DIR, entry.fileName), { force: true });
  if (entries.some((e) => e.kind !== 'uki')) await fsyncDir(join(loc.boot, ENTRIES_DIR));
  if (entries.some((e) => e.kind === 'uki')) await fsyncDir(join(loc.boot, UKI_DIR));
  await rm(join(loc.boot, UKI_DIR, `${newUkiFileName(ref.stateroot, ref.id)}${STAGED_UKI_SUFFIX}`), { force: true });
  await rm(join(loc.boot, deploymentBootDir(ref.id)), { recursive: true, force: true });
  await rm(paths.origin(ref.stateroot, ref.id), { force: true });
  await fsyncDir(paths.deployDir(ref.stateroot));
  await removeTree(paths.deployment(ref.stateroot, ref.id));
  await rm(paths.etcConflicts(ref.stateroot, ref.id), { force: true });
}

/** The staged record first (nothing finalises it any more), then its deployment. */
export async function dropStaged(loc: SysrootLocations, staged: DeploymentRef): Promise<void> {
  await rm(sysrootPaths(loc.sysroot).staged, { force: true });
  await removeDeployment(loc, staged);
}

export async function pruneDeployments(loc: SysrootLocations, options: PruneOptions): Promise<PruneResult> {
  const state = await loadSysrootState(loc);
  const paths = sysrootPaths(loc.sysroot);
  // Pinned deployments stay whatever the caller keeps (`bootc internals pin`).
  const kept = [...options.keep, ...state.origins.filter((o) => o.pinned)];
  const keep = new Set(kept.map(key));
  const removed: string[] = [];
  const remaining: Origin[] = [];
  const doomed = state.origins.filter((o) => !keep.has(key(o)));
  // Hybrid disks: the GRUB menu loses the doomed entries first, so it never names a removed file.
  if (doomed.length > 0) {
    const gone = new Set(doomed.map(key));
    await regenerateGrubMenu(espInDirectory(loc.boot), (name) => gone.has(key({ stateroot: name.stateroot, id: name.deploymentId })));
  }
  for (const origin of state.origins) {
    if (keep.has(key(origin))) {
      remaining.push(origin);
      continue;
    }
    await removeDeployment(loc, origin, state.entries.filter((e) => e.name.stateroot === origin.stateroot && e.name.deploymentId === origin.id));
    removed.push(key(origin));
  }
  const keptNames = kept.map((ref) => ({ stateroot: ref.stateroot, deploymentId: ref.id }));
  const leftoversRemoved: string[] = [];
  for (const name of await removeStaleUkis(espInDirectory(loc.boot), keptNames)) leftoversRemoved.push(`ESP ${UKI_DIR}/${name}`);
  if (options.leftovers) {
    const ukiDir = join(loc.boot, UKI_DIR);
    for (const name of await readdirOrEmpty(ukiDir)) {
      const staged = stagedUkiName(name);
      if (!staged || keep.has(`${staged.stateroot}/${staged.deploymentId}`)) continue;
      await rm(join(ukiDir, name), { force: true });
      leftoversRemoved.push(`ESP ${UKI_DIR}/${name}`);
    }
    const selectors = join(loc.sysroot, SELECTORS_DIR);
    for (const name of await readdirOrEmpty(selectors)) {
      const names = (await readFile(join(selectors, name), 'utf8').catch(() => '')).trim();
      if (keep.has(names)) continue;
      await rm(join(selectors, name), { force: true });
      leftoversRemoved.push(`selector ${name.slice(0, 12)}… (${names || 'empty'})`);
    }
    for (const stateroot of await readdirOrEmpty(join(paths.bootcDir, 'deploy'))) {
      for (const name of await readdirOrEmpty(paths.deployDir(stateroot))) {
        // Checkouts only: the records beside them (<id>.origin, ...) are not ids.
        if (!/^[0-9a-f]{12}\.\d+$/.test(name) || keep.has(`${stateroot}/${name}`)) continue;
        await removeTree(paths.deployment(stateroot, name));
        leftoversRemoved.push(`${stateroot}/${name}`);
      }
    }
    // Temporary files of writes a crash interrupted (core/durable-file.ts).
    for (const dir of [join(loc.boot, ENTRIES_DIR), join(loc.boot, GRUB_ESP_DIR), ukiDir, paths.bootcDir, selectors, ...(await readdirOrEmpty(join(paths.bootcDir, 'deploy'))).map((s) => paths.deployDir(s))]) {
      for (const name of await removeTempFiles(dir)) leftoversRemoved.push(`temporary file ${join(dir, name)}`);
    }
    const liveIds = new Set(kept.map((ref) => ref.id));
    for (const id of await readdirOrEmpty(join(loc.boot, 'bootc'))) {
      if (liveIds.has(id)) continue;
      await rm(join(loc.boot, deploymentBootDir(id)), { recursive: true, force: true });
      leftoversRemoved.push(`ESP bootc/${id}`);
    }
  }
  return { removed, leftoversRemoved, remaining };
}

/**
 * Deployments, then the store. A store that cannot be collected now (an import running, a
 * damaged image) is left for the next update: the deployments are already gone and the
 * space comes back then.
 */
export async function collectGarbage(loc: SysrootLocations, options: PruneOptions): Promise<PruneResult> {
  const pruned = await pruneDeployments(loc, options);
  const retained = (await readRetainedImages(loc.sysroot)).map((r) => r.imageDigest);
  try {
    const gc = await gcStore(loc.sysroot, [...new Set([...pruned.remaining.map((o) => o.manifestDigest), ...retained])]);
    debug(`store: ${formatGcSummary(gc)}`);
  } catch (err) {
    warn(`the store was not collected this time: ${(err as Error).message}`);
  }
  return pruned;
}
