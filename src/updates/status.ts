/**
 * `bootc status`: the staged, booted and rollback deployments in upstream's BootcHost
 * document (org.containers.bootc/v1), or as upstream's human-readable text.
 *
 *   1. load      `loadHostStatus` reads the deployments and their boot entries
 *                (deployments.ts), the cached update and each deployment's /etc conflicts
 *                (update-records.ts), and from the mount table whether /usr has an
 *                overlay and the physical root is read-only
 *   2. describe  `hostStatus` turns those facts into the document (pure)
 *   3. render    `renderStatus`: JSON, YAML (the yaml package is loaded only for it) or text
 *
 * Upstream's keys are kept as upstream defines them; what only this implementation knows
 * (stateroot, deployment id, boot counting, /etc conflicts) sits under one extra key per
 * entry, `deployment`, so a consumer of upstream's schema can ignore it.
 *
 * deployments.ts (and zod with it) is loaded only once the command line (or prepare-root's
 * record, booted.ts) names a deployment: a foreign system gets its answer without it.
 */
import { canonicalJson } from '../core/canonical-json.js';
import { withContext } from '../core/errors.js';
import { mountAt, mountHolding, readMountinfo, type Mount } from '../core/mountinfo.js';
import { parseEntryFileName, type BootCounter } from '../boot/bls.js';
import { parseUkiFileName } from '../boot/uki-entry.js';
import type { DeploymentInfo, DeploymentsView } from './deployments.js';
import { HOST_LOCATIONS, readBootedDeployment, type SysrootLocations } from './booted.js';
import { withSignaturePolicy } from '../deploy/origin.js';
import { readCachedUpdate, readEtcConflicts, type CachedUpdate } from './update-records.js';

export interface ImageReferenceDoc {
  image: string;
  transport: string;
  /** Upstream omits it when nothing is enforced. */
  signature?: 'containerPolicy';
}

export interface ImageStatus {
  image: ImageReferenceDoc;
  version: string | null;
  timestamp: string | null;
  imageDigest: string;
  architecture: string;
}

/**
 * good:    the entry carries no counter (marked good once boot-complete.target was reached)
 * pending: tries left, not yet marked good (a staged deployment, or one booting for now)
 * bad:     no tries left: systemd-boot gave up on it and boots another entry by default
 */
export type BootState = 'good' | 'pending' | 'bad';

export interface DeploymentStatus {
  stateroot: string;
  id: string;
  /** The entry's file name under loader/entries (a UKI's under EFI/Linux/); null for a staged deployment (written at shutdown). */
  bootEntry: string | null;
  bootCounting: { triesLeft: number; triesDone: number } | null;
  /** null when the deployment has no boot entry at all. */
  bootState: BootState | null;
  /** /etc merge conflicts recorded when this deployment was finalised (the local file won). */
  etcConflicts: string[];
}

export interface BootEntry {
  image: ImageStatus | null;
  cachedUpdate: ImageStatus | null;
  incompatible: boolean;
  pinned: boolean;
  softRebootCapable: boolean;
  downloadOnly: boolean;
  store: null;
  ostree: null;
  composefs: null;
  deployment: DeploymentStatus;
}

export interface BootcHost {
  apiVersion: 'org.containers.bootc/v1';
  kind: 'BootcHost';
  metadata: { name: 'host' };
  spec: { image: ImageReferenceDoc | null; bootOrder: 'default' | 'rollback' };
  status: {
    staged: BootEntry | null;
    booted: BootEntry | null;
    rollback: BootEntry | null;
    /** Deployments besides those three (pinned ones); omitted when there are none, as upstream. */
    otherDeployments?: BootEntry[];
    rollbackQueued: boolean;
    type: 'bootcHost' | null;
    /** Both absent on a system not deployed by bootc, as upstream. */
    usrOverlay?: UsrOverlay | null;
    readOnly?: boolean;
  };
}

/** What `hostStatus` needs besides the deployments view; all of it advisory. */
export interface StatusRecords {
  cachedUpdate: CachedUpdate | null;
  /** Keyed by `<stateroot>/<id>`. */
  etcConflicts: Readonly<Record<string, readonly string[]>>;
  /** What is mounted on /usr over the deployment's read-only tree, if anything. */
  usrOverlay?: UsrOverlay | null;
  /** The physical root is mounted read-only (e.g. a live medium). */
  readOnly?: boolean;
}

export interface UsrOverlay {
  accessMode: 'readOnly' | 'readWrite';
  persistence: 'transient' | 'persistent';
}

const refKey = (info: DeploymentInfo): string => `${info.ref.stateroot}/${info.ref.id}`;

export function bootStateOf(counter: BootCounter | undefined): BootState {
  if (!counter) return 'good';
  return counter.triesLeft > 0 ? 'pending' : 'bad';
}

function imageStatusOf(info: DeploymentInfo): ImageStatus {
  const origin = info.origin;
  return {
    image: withSignaturePolicy(origin.image, origin.image.signature === 'containerPolicy'),
    version: origin.imageVersion,
    timestamp: origin.imageCreated,
    imageDigest: origin.manifestDigest,
    architecture: origin.architecture,
  };
}

function deploymentStatusOf(info: DeploymentInfo, stagedEntryFileName: string | null, records: StatusRecords): DeploymentStatus {
  // A staged deployment's entry exists only in the staged record until finalisation.
  const name = info.entry?.name ?? (stagedEntryFileName ? (parseEntryFileName(stagedEntryFileName) ?? parseUkiFileName(stagedEntryFileName)) : null);
  const counter = name?.counter;
  return {
    stateroot: info.ref.stateroot,
    id: info.ref.id,
    bootEntry: info.entry?.fileName ?? null,
    bootCounting: counter ? { triesLeft: counter.triesLeft, triesDone: counter.triesDone ?? 0 } : null,
    bootState: name ? bootStateOf(counter) : null,
    etcConflicts: [...(records.etcConflicts[refKey(info)] ?? [])],
  };
}

function bootEntryOf(info: DeploymentInfo, records: StatusRecords, extra: { stagedEntryFileName?: string; downloadOnly?: boolean; cachedUpdate?: ImageStatus | null } = {}): BootEntry {
  return {
    image: imageStatusOf(info),
    cachedUpdate: extra.cachedUpdate ?? null,
    incompatible: false,
    pinned: info.origin.pinned,
    softRebootCapable: false,
    downloadOnly: extra.downloadOnly ?? false,
    store: null,
    ostree: null,
    composefs: null,
    deployment: deploymentStatusOf(info, extra.stagedEntryFileName ?? null, records),
  };
}

/**
 * An overlay mounted on /usr (upstream `bootc usr-overlay`, or one made by hand): writable
 * unless mounted ro; transient when its upper directory lives on a tmpfs.
 */
export function usrOverlayOf(mounts: readonly Mount[], usrPath = '/usr'): UsrOverlay | null {
  const usr = mountAt(mounts, usrPath);
  if (!usr || usr.fsType !== 'overlay') return null;
  const upper = usr.superOptions.find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length);
  const holder = upper ? mountHolding(mounts, upper) : null;
  return {
    accessMode: usr.options[0] === 'ro' || !upper ? 'readOnly' : 'readWrite',
    persistence: holder && holder.fsType !== 'tmpfs' ? 'persistent' : 'transient',
  };
}

/** As the human-readable status says it: `transient, read/write`. */
export const describeUsrOverlay = (o: UsrOverlay): string => `${o.persistence}, ${o.accessMode === 'readWrite' ? 'read/write' : 'read-only'}`;

/** The physical root (at `sysroot`) is mounted read-only. */
export const sysrootReadOnly = (mounts: readonly Mount[], sysroot: string): boolean => mountAt(mounts, sysroot)?.options[0] === 'ro';

export const NO_RECORDS: StatusRecords = { cachedUpdate: null, etcConflicts: {} };

export function hostStatus(view: DeploymentsView | null, records: StatusRecords = NO_RECORDS): BootcHost {
  const booted = view?.booted ?? null;
  if (!view || !booted) {
    return {
      apiVersion: 'org.containers.bootc/v1',
      kind: 'BootcHost',
      metadata: { name: 'host' },
      spec: { image: null, bootOrder: 'default' },
      status: { staged: null, booted: null, rollback: null, rollbackQueued: false, type: null },
    };
  }
  const staged = view.staged;
  // `bootc upgrade --check` found it; once it (or what it names) is staged or booted it is old news.
  const cached = records.cachedUpdate;
  const deployedDigests = [booted.origin.manifestDigest, staged?.origin.manifestDigest];
  const cachedUpdate = cached && !deployedDigests.includes(cached.imageDigest) ? { ...cached, image: { ...cached.image } } : null;
  const stagedRecord = view.stagedRecord;
  // The spec is what the system follows: a staged `bootc switch` already changed it.
  const following = (staged ?? booted).origin.image;
  return {
    apiVersion: 'org.containers.bootc/v1',
    kind: 'BootcHost',
    metadata: { name: 'host' },
    spec: { image: withSignaturePolicy(following, following.signature === 'containerPolicy'), bootOrder: view.rollbackQueued ? 'rollback' : 'default' },
    status: {
      staged: staged
        ? bootEntryOf(staged, records, {
            downloadOnly: stagedRecord?.downloadOnly === true,
            ...(stagedRecord ? { stagedEntryFileName: stagedRecord.kind === 'uki' ? stagedRecord.ukiFileName : stagedRecord.entryFileName } : {}),
          })
        : null,
      booted: bootEntryOf(booted, records, { cachedUpdate }),
      rollback: view.rollback ? bootEntryOf(view.rollback, records) : null,
      ...(view.others.length > 0 ? { otherDeployments: view.others.map((d) => bootEntryOf(d, records)) } : {}),
      rollbackQueued: view.rollbackQueued,
      type: 'bootcHost',
      usrOverlay: records.usrOverlay ? { ...records.usrOverlay } : null,
      readOnly: records.readOnly ?? false,
    },
  };
}

/** `--booted`: upstream drops every other slot from the document, in all formats. */
export function onlyBooted(host: BootcHost): BootcHost {
  const { otherDeployments: _others, ...status } = host.status;
  return { ...host, status: { ...status, staged: null, rollback: null } };
}

export type StatusFormat = 'humanreadable' | 'yaml' | 'json';

export interface RenderOptions {
  verbose?: boolean;
}

/** Seconds precision, as upstream's human output shows times. */
const shortTime = (iso: string): string => iso.replace(/\.\d+Z$/, 'Z');

const imageName = (ref: ImageReferenceDoc): string => (ref.transport === 'registry' ? ref.image : `${ref.transport}:${ref.image}`);

function boots(state: DeploymentStatus): string | null {
  const counting = state.bootCounting;
  if (state.bootState === 'bad') {
    const attempts = counting && counting.triesDone > 0 ? `${counting.triesDone} attempt${counting.triesDone === 1 ? '' : 's'}` : 'every attempt';
    return `failed ${attempts}; not booted by default`;
  }
  if (state.bootState === 'pending' && counting) {
    return `not yet marked good (${counting.triesLeft} ${counting.triesLeft === 1 ? 'try' : 'tries'} left)`;
  }
  return null;
}

type Slot = 'staged' | 'booted' | 'rollback' | 'other';
const SLOT_PREFIX: Record<Slot, string> = { staged: '  Staged image', booted: '● Booted image', rollback: '  Rollback image', other: '  Other image' };

function humanEntry(slot: Slot, entry: BootEntry, host: BootcHost, verbose: boolean): string[] {
  const prefix = SLOT_PREFIX[slot];
  const width = [...prefix].length;
  const lines: string[] = [];
  const row = (key: string, value: string): void => {
    lines.push(`${key.padStart(width)}: ${value}`);
  };
  const image = entry.image;
  lines.push(`${prefix}: ${image ? imageName(image.image) : '(unknown image)'}`);
  if (image) {
    row('Digest', `${image.imageDigest} (${image.architecture})`);
    if (image.version !== null) row('Version', `${image.version}${image.timestamp ? ` (${shortTime(image.timestamp)})` : ''}`);
    else if (image.timestamp !== null) row('Timestamp', shortTime(image.timestamp));
  }
  if (entry.pinned) row('Pinned', 'yes');
  if (entry.downloadOnly) row('Download-only', 'yes; not applied at reboot until `bootc upgrade --from-downloaded`');
  const update = entry.cachedUpdate;
  if (update) {
    if (update.version !== null) row('UpdateVersion', `${update.version}${update.timestamp ? ` (${shortTime(update.timestamp)})` : ''}`);
    else row('Update', 'Available');
    row('UpdateDigest', update.imageDigest);
  }
  const overlay = host.status.usrOverlay;
  if (slot === 'booted' && overlay) {
    row('/usr overlay', describeUsrOverlay(overlay));
  }
  if (slot === 'rollback' && host.status.rollbackQueued) row('Next boot', 'yes, rollback queued (`bootc rollback` again undoes it)');
  const state = entry.deployment;
  const bootLine = slot === 'staged' ? null : boots(state);
  if (bootLine) row('Boot', bootLine);
  else if (verbose && state.bootState !== null) row('Boot', state.bootState);
  state.etcConflicts.forEach((conflict, i) => (i === 0 ? row('/etc conflicts', conflict) : lines.push(`${' '.repeat(width + 2)}${conflict}`)));
  if (verbose) {
    row('StateRoot', state.stateroot);
    row('Deployment', state.id);
    row('Boot entry', state.bootEntry ?? (slot === 'staged' ? 'written at shutdown' : 'none'));
    if (slot === 'staged' && !entry.downloadOnly) row('Download-only', 'no');
  }
  return lines;
}

export function renderHumanReadable(host: BootcHost, options: RenderOptions = {}): string {
  if (!host.status.booted) return 'System is not deployed via bootc.\n';
  const blocks: string[] = [];
  for (const slot of ['staged', 'booted', 'rollback'] as const) {
    const entry = host.status[slot];
    if (entry) blocks.push(humanEntry(slot, entry, host, options.verbose ?? false).join('\n') + '\n');
  }
  for (const entry of host.status.otherDeployments ?? []) blocks.push(humanEntry('other', entry, host, options.verbose ?? false).join('\n') + '\n');
  return blocks.join('\n');
}

export async function renderStatus(host: BootcHost, format: StatusFormat, options: RenderOptions = {}): Promise<string> {
  if (format === 'json') return canonicalJson(host) + '\n';
  if (format === 'yaml') {
    // Only YAML output pays for loading the yaml package (status wall time is a target).
    const { stringify } = await import('yaml');
    // No folding: a script reading one conflict per line must not get it split in two.
    return stringify(host, { lineWidth: 0 });
  }
  return renderHumanReadable(host, options);
}

export async function loadHostStatus(locations: Partial<SysrootLocations> = {}): Promise<BootcHost> {
  const loc: SysrootLocations = { ...HOST_LOCATIONS, ...locations };
  if (!(await readBootedDeployment(loc))) return hostStatus(null);
  const { loadDeployments } = await import('./deployments.js');
  return withContext(`Reading the status of the deployments under ${loc.sysroot}`, async () => {
    const view = await loadDeployments(loc);
    const etcConflicts: Record<string, string[]> = {};
    for (const info of [view.staged, view.booted, view.rollback, ...view.others]) {
      if (info) etcConflicts[refKey(info)] = await readEtcConflicts(loc.sysroot, info.ref.stateroot, info.ref.id);
    }
    const mounts = await readMountinfo().catch(() => []);
    return hostStatus(view, {
      cachedUpdate: await readCachedUpdate(loc.sysroot),
      etcConflicts,
      usrOverlay: usrOverlayOf(mounts),
      readOnly: sysrootReadOnly(mounts, loc.sysroot),
    });
  });
}
