/**
 * The origin record of a deployment (`/bootc/deploy/<stateroot>/<id>.origin`): which image
 * it came from, which reference to follow for updates, and the kernel arguments it boots
 * with. JSON, written atomically; `bootc status` and updates read it.
 */
import { z } from 'zod';
import { UserError } from '../core/errors.js';

export const ORIGIN_VERSION = 1;

export const originSchema = z.object({
  version: z.literal(ORIGIN_VERSION),
  stateroot: z.string(),
  id: z.string(),
  /** The image to follow for updates, as the user wrote it (e.g. `quay.io/x/y:latest`). */
  image: z.object({ image: z.string(), transport: z.string() }),
  /** What was actually deployed. */
  manifestDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  configDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  architecture: z.string(),
  /** `org.opencontainers.image.version`, if the image carries it. */
  imageVersion: z.string().nullable(),
  /** `org.opencontainers.image.created` or the config's created time. */
  imageCreated: z.string().nullable(),
  kernelVersion: z.string(),
  /** Kernel arguments of the boot entry, without `root=`/`bootc.deploy=` (computed at boot-entry time). */
  kargs: z.array(z.string()),
  /** kargs that came from the image's kargs.d, kept apart so upgrades can diff them as upstream does. */
  kargsFromImage: z.array(z.string()),
  createdAt: z.string(),
  pinned: z.boolean().default(false),
  /**
   * How the deployment boots: a Type #1 entry, or a UKI in EFI/Linux/ (assembled by bootc,
   * or the image's sealed one). Updates keep it: the next deployment boots the same way.
   * Absent (records written before UKIs): type1.
   */
  bootType: z.enum(['type1', 'uki']).optional(),
});

export type Origin = z.infer<typeof originSchema>;

export function parseOrigin(text: string, source: string): Origin {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${source} is not valid JSON: ${(err as Error).message}`, {
      hint: 'the deployment record is damaged; `bootc status` lists deployments that can still boot',
    });
  }
  const parsed = originSchema.safeParse(doc);
  if (!parsed.success) {
    throw new UserError(`${source} is not a deployment record this version understands: ${parsed.error.issues[0]?.message}`, {
      hint: 'the deployment was written by another tool version; redeploy with `bootc switch`',
    });
  }
  return parsed.data;
}

export function renderOrigin(origin: Origin): string {
  return JSON.stringify(origin, null, 2) + '\n';
}
