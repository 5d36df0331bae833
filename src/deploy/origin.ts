/**
 * The origin record of a deployment (`/bootc/deploy/<stateroot>/<id>.origin`): which image
 * it came from, which reference to follow for updates, and the kernel arguments it boots
 * with. JSON, written atomically; `bootc status` and updates read it.
 */
import { UserError } from '../core/errors.js';

export const ORIGIN_VERSION = 1;

/**
 * Read by every `bootc status`: checked by hand rather than with zod, whose load alone is a
 * quarter of status's start-up budget.
 */
export interface Origin {
  version: typeof ORIGIN_VERSION;
  stateroot: string;
  id: string;
  /**
   * The image to follow for updates, as the user wrote it (e.g. `quay.io/x/y:latest`).
   * `signature: 'containerPolicy'` (upstream's spec): installed or switched with
   * --enforce-container-sigpolicy, so every update of it is held to that too.
   */
  image: FollowedImage;
  /** What was actually deployed. */
  manifestDigest: string;
  configDigest: string;
  architecture: string;
  /** `org.opencontainers.image.version`, if the image carries it. */
  imageVersion: string | null;
  /** `org.opencontainers.image.created` or the config's created time. */
  imageCreated: string | null;
  kernelVersion: string;
  /** Kernel arguments of the boot entry, without `root=`/`bootc.deploy=` (computed at boot-entry time). */
  kargs: string[];
  /** kargs that came from the image's kargs.d, kept apart so upgrades can diff them as upstream does. */
  kargsFromImage: string[];
  createdAt: string;
  pinned: boolean;
  /**
   * How the deployment boots: a Type #1 entry, or a UKI in EFI/Linux/ (assembled by bootc,
   * or the image's sealed one). Updates keep it: the next deployment boots the same way.
   * Absent (records written before UKIs): type1.
   */
  bootType?: 'type1' | 'uki';
}

export interface FollowedImage {
  image: string;
  transport: string;
  signature?: 'containerPolicy';
}

/** `image` with `signature: containerPolicy` when `enforce`, without it otherwise. */
export function withSignaturePolicy(image: { image: string; transport: string }, enforce: boolean): FollowedImage {
  return { image: image.image, transport: image.transport, ...(enforce ? { signature: 'containerPolicy' as const } : {}) };
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** The first thing wrong with `doc` as an origin record, or null. */
export function originProblem(doc: unknown): string | null {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'not a JSON object';
  const d = doc as Record<string, unknown>;
  if (d['version'] !== ORIGIN_VERSION) return `version: expected ${ORIGIN_VERSION}, found ${JSON.stringify(d['version'])}`;
  for (const key of ['stateroot', 'id', 'architecture', 'kernelVersion', 'createdAt'] as const) {
    if (typeof d[key] !== 'string') return `${key}: expected a string`;
  }
  const image = d['image'] as Record<string, unknown> | undefined;
  if (typeof image !== 'object' || image === null || typeof image['image'] !== 'string' || typeof image['transport'] !== 'string') {
    return 'image: expected {image, transport} strings';
  }
  if (image['signature'] !== undefined && image['signature'] !== 'containerPolicy') return 'image.signature: expected "containerPolicy"';
  for (const key of ['manifestDigest', 'configDigest'] as const) {
    if (typeof d[key] !== 'string' || !DIGEST.test(d[key] as string)) return `${key}: expected a sha256 digest`;
  }
  for (const key of ['imageVersion', 'imageCreated'] as const) {
    if (d[key] !== null && typeof d[key] !== 'string') return `${key}: expected a string or null`;
  }
  for (const key of ['kargs', 'kargsFromImage'] as const) {
    const v = d[key];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return `${key}: expected an array of strings`;
  }
  if (d['pinned'] !== undefined && typeof d['pinned'] !== 'boolean') return 'pinned: expected true or false';
  if (d['bootType'] !== undefined && d['bootType'] !== 'type1' && d['bootType'] !== 'uki') return 'bootType: expected "type1" or "uki"';
  return null;
}

export function parseOrigin(text: string, source: string): Origin {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${source} is not valid JSON: ${(err as Error).message}`, {
      hint: 'the deployment record is damaged; `bootc status` lists deployments that can still boot',
    });
  }
  const problem = originProblem(doc);
  if (problem !== null) {
    throw new UserError(`${source} is not a deployment record this version understands: ${problem}`, {
      hint: 'the deployment was written by another tool version; redeploy with `bootc switch`',
    });
  }
  const d = doc as Origin;
  return { ...d, image: withSignaturePolicy(d.image, d.image.signature === 'containerPolicy'), pinned: d.pinned ?? false };
}

export function renderOrigin(origin: Origin): string {
  return JSON.stringify(origin, null, 2) + '\n';
}
