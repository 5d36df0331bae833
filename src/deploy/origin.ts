/**
 * The origin record of a deployment (`/bootc/deploy/<stateroot>/<id>.origin`): which image
 * it came from, which reference to follow for updates, and the kernel arguments it boots
 * with. JSON, written atomically; `bootc status` and updates read it.
 */
import {
  boolean,
  literal,
  object,
  optional,
  parseRecord,
  recordCheck,
  sha256Digest,
  string,
  stringArray,
  stringOrNull,
  type RecordCheck,
} from '../core/record.js';

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

/** The first thing wrong with `doc` as an origin record, or null. */
export const originProblem: RecordCheck = recordCheck({
  version: literal(ORIGIN_VERSION),
  stateroot: string,
  id: string,
  architecture: string,
  kernelVersion: string,
  createdAt: string,
  image: object({ image: string, transport: string, signature: optional(literal('containerPolicy')) }),
  manifestDigest: sha256Digest,
  configDigest: sha256Digest,
  imageVersion: stringOrNull,
  imageCreated: stringOrNull,
  kargs: stringArray,
  kargsFromImage: stringArray,
  pinned: optional(boolean),
  bootType: optional(literal('type1', 'uki')),
});

export function parseOrigin(text: string, source: string): Origin {
  const d = parseRecord<Origin>(text, source, originProblem, {
    name: 'deployment record',
    damagedHint: 'the deployment record is damaged; `bootc status` lists deployments that can still boot',
    unknownHint: 'the deployment was written by another tool version; redeploy with `bootc switch`',
  });
  return { ...d, image: withSignaturePolicy(d.image, d.image.signature === 'containerPolicy'), pinned: d.pinned ?? false };
}

export function renderOrigin(origin: Origin): string {
  return JSON.stringify(origin, null, 2) + '\n';
}
