/**
 * `bootc status`, first cut: the booted deployment, found from `bootc.deploy=` on the
 * kernel command line, described by its origin record, in upstream's BootcHost document
 * (org.containers.bootc/v1). Staged and rollback deployments are not reported yet.
 *
 * Building and rendering are pure (golden-text tests); `loadHostStatus` reads
 * /proc/cmdline and the origin under the physical root (/sysroot in a booted system).
 */
import { canonicalJson } from '../core/canonical-json.js';
import { readFile } from 'node:fs/promises';
import { stringify as toYaml } from 'yaml';
import { withContext } from '../core/errors.js';
import { DEPLOY_KARG } from '../boot/prepare-root.js';
import { parseOrigin, type Origin } from '../deploy/origin.js';
import { sysrootPaths } from '../deploy/paths.js';

export interface ImageReferenceDoc {
  image: string;
  transport: string;
}

export interface ImageStatus {
  image: ImageReferenceDoc;
  version: string | null;
  timestamp: string | null;
  imageDigest: string;
  architecture: string;
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
    rollbackQueued: boolean;
    type: 'bootcHost' | null;
  };
}

/** `<stateroot>/<id>` of the booted deployment, or null on a system not booted by bootc. */
export function bootedDeployment(cmdline: string): { stateroot: string; id: string } | null {
  for (const arg of cmdline.trim().split(/\s+/)) {
    if (!arg.startsWith(`${DEPLOY_KARG}=`)) continue;
    const value = arg.slice(DEPLOY_KARG.length + 1);
    const slash = value.indexOf('/');
    if (slash <= 0 || slash === value.length - 1) return null;
    return { stateroot: value.slice(0, slash), id: value.slice(slash + 1) };
  }
  return null;
}

export function bootEntryOf(origin: Origin): BootEntry {
  return {
    image: {
      image: { image: origin.image.image, transport: origin.image.transport },
      version: origin.imageVersion,
      timestamp: origin.imageCreated,
      imageDigest: origin.manifestDigest,
      architecture: origin.architecture,
    },
    cachedUpdate: null,
    incompatible: false,
    pinned: origin.pinned,
    softRebootCapable: false,
    downloadOnly: false,
    store: null,
    ostree: null,
    composefs: null,
  };
}

export function hostStatus(booted: Origin | null): BootcHost {
  return {
    apiVersion: 'org.containers.bootc/v1',
    kind: 'BootcHost',
    metadata: { name: 'host' },
    spec: { image: booted ? { image: booted.image.image, transport: booted.image.transport } : null, bootOrder: 'default' },
    status: { staged: null, booted: booted ? bootEntryOf(booted) : null, rollback: null, rollbackQueued: false, type: booted ? 'bootcHost' : null },
  };
}

export type StatusFormat = 'humanreadable' | 'yaml' | 'json';


/** Seconds precision, as upstream's human output shows times. */
const shortTime = (iso: string): string => iso.replace(/\.\d+Z$/, 'Z');

function humanEntry(label: string, entry: BootEntry, marker: string): string[] {
  const image = entry.image;
  if (!image) return [`${marker}${label}: (unknown image)`];
  const name = image.image.transport === 'registry' ? image.image.image : `${image.image.transport}:${image.image.image}`;
  const width = label.length + marker.length;
  const pad = (key: string) => key.padStart(width);
  const lines = [`${marker}${label}: ${name}`, `${pad('Digest')}: ${image.imageDigest} (${image.architecture})`];
  if (image.version !== null) lines.push(`${pad('Version')}: ${image.version}${image.timestamp ? ` (${shortTime(image.timestamp)})` : ''}`);
  if (entry.pinned) lines.push(`${pad('Pinned')}: yes`);
  return lines;
}

export function renderStatus(host: BootcHost, format: StatusFormat): string {
  if (format === 'json') return canonicalJson(host) + '\n';
  if (format === 'yaml') return toYaml(host);
  const booted = host.status.booted;
  if (!booted) return 'System is not deployed via bootc.\n';
  return humanEntry('Booted image', booted, '● ').join('\n') + '\n';
}

export interface LoadStatusOptions {
  cmdlinePath?: string;
  /** The physical root; in a booted system the addon initrd binds it at /sysroot. */
  sysroot?: string;
}

export async function loadHostStatus(options: LoadStatusOptions = {}): Promise<BootcHost> {
  const cmdline = await readFile(options.cmdlinePath ?? '/proc/cmdline', 'utf8');
  const booted = bootedDeployment(cmdline);
  if (!booted) return hostStatus(null);
  const path = sysrootPaths(options.sysroot ?? '/sysroot').origin(booted.stateroot, booted.id);
  return withContext(`Reading the booted deployment ${booted.stateroot}/${booted.id}`, async () =>
    hostStatus(parseOrigin(await readFile(path, 'utf8'), path)),
  );
}
