/**
 * What a signature says, once its cryptography checks out: the "simple signing" payload
 * (containers-signature(5)) both GPG and sigstore signatures carry, and whether what it
 * claims is what a requirement accepts.
 *
 *   {"critical": {"type": "atomic container signature",       (sigstore: "cosign container image signature")
 *                 "image": {"docker-manifest-digest": "sha256:…"},
 *                 "identity": {"docker-reference": "registry.example.com/os:v2"}},
 *    "optional": {"creator": "…", "timestamp": 1700000000}}
 *
 * Parsed as strictly as containers/image: unknown fields in `critical` reject the signature
 * (a future critical field we ignored could change its meaning).
 */
import { createHash } from 'node:crypto';
import { formatDockerReference, parseDockerReference, type DockerReference } from './reference.js';
import type { SignedIdentity } from './signature-policy.js';
import { exactFields, parseStrictJson } from './strict-json.js';

export const SIMPLE_SIGNING_TYPE = 'atomic container signature';
export const SIGSTORE_PAYLOAD_TYPE = 'cosign container image signature';

export interface SignaturePayload {
  manifestDigest: string;
  /** As written in the signature (before normalisation). */
  dockerReference: string;
}

/** Parse a payload of the given `type`; throws an Error saying what is wrong. */
export function parseSignaturePayload(bytes: Uint8Array, type: string): SignaturePayload {
  const top = exactFields(parseStrictJson(Buffer.from(bytes).toString('utf8'), 'the signature payload'), ['critical', 'optional'], 'the signature payload');
  const critical = exactFields(top['critical'], ['type', 'image', 'identity'], 'critical');
  if (critical['type'] !== type) throw new Error(`critical.type is ${JSON.stringify(critical['type'])}, not "${type}"`);
  const image = exactFields(critical['image'], ['docker-manifest-digest'], 'critical.image');
  const identity = exactFields(critical['identity'], ['docker-reference'], 'critical.identity');
  const digest = image['docker-manifest-digest'];
  const reference = identity['docker-reference'];
  if (typeof digest !== 'string' || !/^[a-z0-9]+:[a-f0-9]+$/.test(digest)) throw new Error('critical.image.docker-manifest-digest is not a digest');
  if (typeof reference !== 'string') throw new Error('critical.identity.docker-reference is not a string');
  const optional = top['optional'];
  if (optional !== undefined && optional !== null && (typeof optional !== 'object' || Array.isArray(optional))) throw new Error('optional must be an object');
  return { manifestDigest: digest, dockerReference: reference };
}

/** Does the signed digest name these manifest bytes (in the signature's own algorithm)? */
export function digestMatchesManifest(signedDigest: string, manifestBytes: Uint8Array): boolean {
  const [algorithm, hex] = signedDigest.split(':') as [string, string];
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return false;
  return createHash(algorithm).update(manifestBytes).digest('hex') === hex;
}

const sameName = (a: DockerReference, b: DockerReference): boolean => a.name === b.name;
const sameReference = (a: DockerReference, b: DockerReference): boolean => formatDockerReference(a) === formatDockerReference(b);
const nameOnly = (r: DockerReference): boolean => r.tag === undefined && r.digest === undefined;

/** matchRepoDigestOrExact: a tag must match exactly; a digest reference needs the same repository. */
function repoDigestOrExact(intended: DockerReference, signed: DockerReference): boolean {
  if (nameOnly(signed)) return false;
  if (intended.tag !== undefined) return sameReference(intended, signed);
  if (intended.digest !== undefined) return sameName(intended, signed);
  return false;
}

/** `prefix` replaced by `signedPrefix` when it covers `ref` (whole components only). */
export function remapReference(ref: DockerReference, prefix: string, signedPrefix: string): DockerReference {
  const text = formatDockerReference(ref);
  if (!text.startsWith(prefix)) return ref;
  const next = text[prefix.length];
  const repositoryPrefix = prefix.includes('/');
  if (!(next === '/' || (repositoryPrefix && (next === ':' || next === '@')))) return ref;
  return parseDockerReference(signedPrefix + text.slice(prefix.length));
}

/**
 * Whether a signature claiming `signedReference` is accepted for an image whose own
 * docker reference is `intended` (null for transports without one: oci, archives).
 * Null when accepted, else why not.
 */
export function identityProblem(rule: SignedIdentity, intended: DockerReference | null, signedReference: string): string | null {
  let signed: DockerReference;
  try {
    signed = parseDockerReference(signedReference);
  } catch {
    return `the signature claims ${JSON.stringify(signedReference)}, which is not a docker reference`;
  }
  const claims = `the signature is for ${formatDockerReference(signed)}`;
  const needsImageReference = (): string => `${claims}; this image has no docker reference to match it with (use exactReference or exactRepository in signedIdentity)`;
  switch (rule.type) {
    case 'matchExact':
      if (intended === null) return needsImageReference();
      return !nameOnly(intended) && !nameOnly(signed) && sameReference(intended, signed) ? null : `${claims}, not ${formatDockerReference(intended)} (signedIdentity matchExact)`;
    case 'matchRepoDigestOrExact':
      if (intended === null) return needsImageReference();
      return repoDigestOrExact(intended, signed) ? null : `${claims}, not ${formatDockerReference(intended)} (signedIdentity matchRepoDigestOrExact)`;
    case 'matchRepository':
      if (intended === null) return needsImageReference();
      return sameName(intended, signed) ? null : `${claims}, not the repository ${intended.name} (signedIdentity matchRepository)`;
    case 'exactReference':
      return !nameOnly(signed) && sameReference(rule.dockerReference, signed) ? null : `${claims}, not ${formatDockerReference(rule.dockerReference)} (signedIdentity exactReference)`;
    case 'exactRepository':
      return signed.name === rule.dockerRepository ? null : `${claims}, not the repository ${rule.dockerRepository} (signedIdentity exactRepository)`;
    case 'remapIdentity': {
      if (intended === null) return needsImageReference();
      let remapped: DockerReference;
      try {
        remapped = remapReference(intended, rule.prefix, rule.signedPrefix);
      } catch (err) {
        return `remapping ${formatDockerReference(intended)} from ${rule.prefix} to ${rule.signedPrefix} gives no valid reference: ${(err as Error).message}`;
      }
      return repoDigestOrExact(remapped, signed) ? null : `${claims}, not ${formatDockerReference(remapped)} (signedIdentity remapIdentity from ${formatDockerReference(intended)})`;
    }
  }
}
