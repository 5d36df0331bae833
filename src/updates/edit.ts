/**
 * `bootc edit`: apply a `BootcHost` document's `spec` (upstream: only the spec is honoured).
 * Two things can change: the image followed (a switch) and the boot order (a rollback).
 * Planning is pure; the caller runs the switch or rollback it asks for.
 */
import { UserError } from '../core/errors.js';

export interface HostSpec {
  image: { image: string; transport: string; signature?: 'containerPolicy' } | null;
  bootOrder: 'default' | 'rollback';
}

export type EditPlan =
  | { kind: 'unchanged' }
  | { kind: 'switch'; image: NonNullable<HostSpec['image']> }
  | { kind: 'rollback' };

const HINT = 'edit the output of `bootc status --format yaml`; only spec.image and spec.bootOrder can change';

function fail(source: string, what: string): never {
  throw new UserError(`${source}: ${what}`, { hint: HINT });
}

/** The spec of a parsed YAML/JSON BootcHost document, checked. */
export function specOf(doc: unknown, source: string): HostSpec {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail(source, 'not a BootcHost document (expected a mapping)');
  const d = doc as Record<string, unknown>;
  if (d['apiVersion'] !== undefined && d['apiVersion'] !== 'org.containers.bootc/v1') fail(source, `unsupported apiVersion ${JSON.stringify(d['apiVersion'])}`);
  if (d['kind'] !== undefined && d['kind'] !== 'BootcHost') fail(source, `unsupported kind ${JSON.stringify(d['kind'])}`);
  const spec = d['spec'];
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) fail(source, 'no spec');
  const s = spec as Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (key !== 'image' && key !== 'bootOrder') fail(source, `unknown key spec.${key}`);
  }
  let image: HostSpec['image'] = null;
  if (s['image'] !== undefined && s['image'] !== null) {
    const i = s['image'] as Record<string, unknown>;
    if (typeof i !== 'object' || typeof i['image'] !== 'string' || i['image'] === '') fail(source, 'spec.image.image must be an image reference');
    const transport = i['transport'] ?? 'registry';
    if (typeof transport !== 'string') fail(source, 'spec.image.transport must be a string');
    for (const key of Object.keys(i)) {
      if (key !== 'image' && key !== 'transport' && key !== 'signature') fail(source, `unknown key spec.image.${key}`);
    }
    // Upstream's values: containerPolicy (enforced), insecure (the default here), ostreeRemote.
    const signature = i['signature'];
    if (signature !== undefined && signature !== 'containerPolicy' && signature !== 'insecure') {
      fail(source, `spec.image.signature ${JSON.stringify(signature)} is not supported: use "containerPolicy" (the signature policy must require a signature) or leave it out`);
    }
    image = { image: i['image'], transport, ...(signature === 'containerPolicy' ? { signature } : {}) };
  }
  const bootOrder = s['bootOrder'] ?? 'default';
  if (bootOrder !== 'default' && bootOrder !== 'rollback') fail(source, `spec.bootOrder must be "default" or "rollback", not ${JSON.stringify(bootOrder)}`);
  return { image, bootOrder };
}

export function planEdit(current: HostSpec, requested: HostSpec, source: string): EditPlan {
  if (requested.image === null) {
    if (current.image !== null) fail(source, 'spec.image cannot be removed');
  }
  const imageChanged =
    requested.image !== null &&
    (current.image === null ||
      requested.image.image !== current.image.image ||
      requested.image.transport !== current.image.transport ||
      requested.image.signature !== current.image.signature);
  const orderChanged = requested.bootOrder !== current.bootOrder;
  if (imageChanged && orderChanged) {
    fail(source, 'spec.image and spec.bootOrder cannot change in one edit');
  }
  if (imageChanged) return { kind: 'switch', image: requested.image! };
  if (orderChanged) return { kind: 'rollback' };
  return { kind: 'unchanged' };
}
