/**
 * The deployments of a physical root and their roles, as updates and rollback see them:
 *
 *   booted    named by `bootc.deploy=<stateroot>/<id>` on the kernel command line
 *   staged    named by the staged record (`/sysroot/bootc/staged`); it has no boot entry
 *             until finalisation writes one at shutdown
 *   rollback  the best-ordered other deployment that has a boot entry
 *
 * The boot order is the entries' own (bls.ts `bootOrder`): the first boots next. When that
 * first entry is the rollback deployment, a rollback is queued.
 *
 * Both kinds of entry take part: Type #1 entries in loader/entries and our UKIs in
 * EFI/Linux/ (their `.osrel` boot order is the `version`), ordered together as systemd-boot
 * orders them. A sealed UKI (the image's own, not ordered by bootc) counts as version 0.
 *
 * `describeDeployments` is pure; `loadDeployments` reads the origins, the ESP (mounted at
 * /boot in the booted system) and /proc/cmdline (or, after a sealed-UKI boot, whose command
 * line names only a selector, the record prepare-root leaves in /run/bootc).
 */
import { readFile } from 'node:fs/promises';
import { readUkisInDir } from '../boot/uki-boot-dir.js';
import { readdirOrEmpty } from '../core/fs-probe.js';
import { join } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { boolean, literal, object, optional, parseRecord, recordCheck, string, type RecordCheck } from '../core/record.js';
import { ENTRIES_DIR, bootOrder, parseBlsEntry, parseEntryFileName, type BlsEntry, type EntryName } from '../boot/bls.js';
import { GRUBENV_PATH, parseGrubEnv, withGrubCounts, type GrubEnv } from '../boot/grub-menu.js';
import { parseOrigin, type Origin } from '../deploy/origin.js';
import { sysrootPaths } from '../deploy/paths.js';
import { HOST_LOCATIONS, readBootedDeployment, type SysrootLocations } from './booted.js';

export { HOST_LOCATIONS, type SysrootLocations };

export interface DeploymentRef {
  stateroot: string;
  id: string;
}

export interface EntryOnEsp {
  fileName: string;
  name: EntryName;
  /** The boot order number (BLS `version`, or a UKI's `.osrel` IMAGE_VERSION). */
  version: string;
  /** A UKI in EFI/Linux/ rather than a Type #1 entry in loader/entries (absent: Type #1). */
  kind?: 'type1' | 'uki';
  /** A UKI whose boot order is its own (the image's sealed UKI): rollback cannot reorder it. */
  fixedOrder?: boolean;
}

/**
 * What upgrade leaves for finalisation: the deployment, and its boot entry complete except
 * for the `version`, which finalisation picks so it boots before everything present then.
 */
export interface StagedType1Record {
  /** Absent in records written before UKIs. */
  kind?: 'type1';
  stateroot: string;
  id: string;
  entryFileName: string;
  entry: { title: string; sortKey: string; linux: string; initrd: string; options: string };
  /** `bootc upgrade --download-only`: not finalised until `--from-downloaded` clears it. */
  downloadOnly?: boolean;
}

/**
 * A UKI deployment: its UKI waits as EFI/Linux/<ukiFileName>.staged (systemd-boot lists only
 * `*.efi`); finalisation renames it, after making its boot order the highest if it is not.
 */
export interface StagedUkiRecord {
  kind: 'uki';
  stateroot: string;
  id: string;
  ukiFileName: string;
  downloadOnly?: boolean;
}

export type StagedRecord = StagedUkiRecord | StagedType1Record;

/**
 * The first thing wrong with `doc` as a staged record, or null. core/record's checker, not
 * zod: status reads this record on every call and zod's load alone would be a quarter of
 * its budget.
 */
export const stagedRecordProblem: RecordCheck = (doc) => {
  const kind = recordCheck({ kind: optional(literal('type1', 'uki')), downloadOnly: optional(boolean) })(doc);
  if (kind !== null) return kind;
  return (doc as { kind?: string }).kind === 'uki' ? stagedUkiCheck(doc) : stagedType1Check(doc);
};
const stagedUkiCheck = recordCheck({ stateroot: string, id: string, ukiFileName: string });
const stagedType1Check = recordCheck({
  stateroot: string,
  id: string,
  entryFileName: string,
  entry: object({ title: string, sortKey: string, linux: string, initrd: string, options: string }),
});

/** The file name the staged deployment's entry gets at finalisation. */
export const stagedBootFileName = (record: StagedRecord): string => (record.kind === 'uki' ? record.ukiFileName : record.entryFileName);

export type StagedEntry = Omit<BlsEntry, 'version'>;

export function parseStagedRecord(text: string, source: string): StagedRecord {
  return parseRecord<StagedRecord>(text, source, stagedRecordProblem, {
    name: 'staged update record',
    damagedHint: 'the staged update record is damaged; `bootc rollback` drops it, then run `bootc upgrade` again',
    unknownHint: 'run `bootc upgrade` again to stage the update anew',
  });
}

export const renderStagedRecord = (record: StagedRecord): string => JSON.stringify(record, null, 2) + '\n';

export interface SysrootState {
  origins: readonly Origin[];
  entries: readonly EntryOnEsp[];
  booted: DeploymentRef | null;
  staged: StagedRecord | null;
}

export interface DeploymentInfo {
  ref: DeploymentRef;
  origin: Origin;
  /** Absent for a staged deployment (and for one whose entry was removed). */
  entry: EntryOnEsp | null;
}

export interface DeploymentsView {
  booted: DeploymentInfo | null;
  staged: DeploymentInfo | null;
  /** The staged record, when its deployment is complete. */
  stagedRecord: StagedRecord | null;
  rollback: DeploymentInfo | null;
  /** Every other complete deployment: pinned ones (GC keeps them), or ones GC has not reached yet. */
  others: DeploymentInfo[];
  /** Entries, first = boots next (a staged deployment, once finalised, goes before all). */
  order: EntryOnEsp[];
  rollbackQueued: boolean;
  /** The `version` a new default entry gets: one above every entry present. */
  nextVersion: number;
}

const sameRef = (a: DeploymentRef, b: DeploymentRef): boolean => a.stateroot === b.stateroot && a.id === b.id;

export function describeDeployments(state: SysrootState): DeploymentsView {
  const order = bootOrder(state.entries);
  const entryOf = (ref: DeploymentRef): EntryOnEsp | null =>
    order.find((e) => e.name.stateroot === ref.stateroot && e.name.deploymentId === ref.id) ?? null;
  const info = (ref: DeploymentRef | null): DeploymentInfo | null => {
    if (!ref) return null;
    const origin = state.origins.find((o) => sameRef(o, ref));
    // No origin: incomplete (deploy.ts writes it last), never treated as a deployment.
    return origin ? { ref: { stateroot: ref.stateroot, id: ref.id }, origin, entry: entryOf(ref) } : null;
  };
  const booted = info(state.booted);
  const staged = info(state.staged);
  let rollback: DeploymentInfo | null = null;
  for (const entry of order) {
    const ref = { stateroot: entry.name.stateroot, id: entry.name.deploymentId };
    if (booted && sameRef(ref, booted.ref)) continue;
    if (staged && sameRef(ref, staged.ref)) continue;
    rollback = info(ref);
    if (rollback) break;
  }
  const first = order[0];
  const rollbackQueued =
    staged === null && rollback !== null && first !== undefined && first.name.stateroot === rollback.ref.stateroot && first.name.deploymentId === rollback.ref.id;
  const highest = Math.max(0, ...state.entries.map((e) => Number.parseInt(e.version, 10)).filter(Number.isFinite));
  const slotted = [booted, staged, rollback].filter((d): d is DeploymentInfo => d !== null);
  const others = state.origins
    .filter((o) => !slotted.some((d) => sameRef(d.ref, o)))
    .map((o) => info(o)!)
    .sort((a, b) => `${a.ref.stateroot}/${a.ref.id}`.localeCompare(`${b.ref.stateroot}/${b.ref.id}`));
  return { booted, staged, stagedRecord: staged ? state.staged : null, rollback, others, order, rollbackQueued, nextVersion: highest + 1 };
}

/** Type #1 entries and our UKIs, with their boot order. */
export async function readEntries(boot: string): Promise<EntryOnEsp[]> {
  const dir = join(boot, ENTRIES_DIR);
  const out: EntryOnEsp[] = [];
  for (const fileName of await readdirOrEmpty(dir)) {
    const name = parseEntryFileName(fileName);
    if (!name) continue;
    const parsed = parseBlsEntry(await readFile(join(dir, fileName), 'utf8'));
    out.push({ fileName, name, version: parsed['version']?.[0] ?? '0' });
  }
  for (const uki of await readUkisInDir(boot)) {
    out.push({ fileName: uki.fileName, name: uki.name, version: uki.version ?? '0', kind: 'uki', ...(uki.version === null ? { fixedOrder: true } : {}) });
  }
  return withGrubCounts(out, await readGrubEnvOrEmpty(boot));
}

/** grubenv on a hybrid disk's ESP ({} elsewhere, or when it is not an environment block). */
async function readGrubEnvOrEmpty(boot: string): Promise<GrubEnv> {
  const text = await readFile(join(boot, GRUBENV_PATH), 'utf8').catch(() => null);
  if (text === null) return {};
  try {
    return parseGrubEnv(text);
  } catch {
    return {};
  }
}

export async function readStagedRecord(sysroot: string): Promise<StagedRecord | null> {
  const path = sysrootPaths(sysroot).staged;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return parseStagedRecord(text, path);
}

export async function loadSysrootState(loc: SysrootLocations = HOST_LOCATIONS): Promise<SysrootState> {
  return withContext(`Reading the deployments under ${loc.sysroot}`, async () => {
    const paths = sysrootPaths(loc.sysroot);
    const origins: Origin[] = [];
    for (const stateroot of await readdirOrEmpty(join(paths.bootcDir, 'deploy'))) {
      for (const file of await readdirOrEmpty(paths.deployDir(stateroot))) {
        if (!file.endsWith('.origin')) continue;
        const path = join(paths.deployDir(stateroot), file);
        origins.push(parseOrigin(await readFile(path, 'utf8'), path));
      }
    }
    const booted = await readBootedDeployment(loc);
    return { origins, entries: await readEntries(loc.boot), booted, staged: await readStagedRecord(loc.sysroot) };
  });
}

export async function loadDeployments(loc: SysrootLocations = HOST_LOCATIONS): Promise<DeploymentsView> {
  return describeDeployments(await loadSysrootState(loc));
}

/** The booted deployment, or the error every update command gives on a foreign system. */
export function requireBooted(view: DeploymentsView): DeploymentInfo {
  if (!view.booted) {
    throw new UserError('System is not deployed via bootc: no bootc.deploy= deployment on the kernel command line, and no /run/bootc/booted-deployment', {
      hint: 'install the system with `bootc install to-disk` first; updates work on a system booted from a bootc deployment',
    });
  }
  return view.booted;
}
