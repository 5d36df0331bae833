/**
 * Whether an image may be pulled: the signature policy (containers-policy.json(5)) applied
 * to the manifest a pull is about to use, before anything of the image is stored.
 *
 * 1. Find the requirement list: the image's most specific policy scope.
 * 2. Before any network: `--enforce-container-sigpolicy` refuses if that list would accept
 *    the image unsigned; a `reject` in it refuses the image outright.
 * 3. For each requirement (all must hold): insecureAcceptAnything passes; reject refuses;
 *    signedBy needs one GPG signature from the lookaside storage, and sigstoreSigned one
 *    sigstore attachment, that (a) verifies with a trusted key, (b) signs the digest of
 *    exactly these manifest bytes and (c) claims an identity the requirement accepts.
 *
 * A refusal is a UserError naming the image, the policy file and scope, and for each
 * signature why it was not accepted.
 *
 * The modules only signed images need are imported when a scope needs them, and warmed up
 * while the manifest downloads (warmUp): the exec wrapper (execa, for gpgv) alone took
 * ~150 ms to load and the YAML parser (registries.d) ~60 ms, which an unsigned pull should
 * not pay and a signed one should not wait for (bench/sigpolicy.ts).
 */
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UserError } from '../core/errors.js';
import { formatReference } from './reference.js';
import type { RegistriesD, RegistriesDPaths, SignatureStorage } from './registries-d.js';
import {
  SIGSTORE_PAYLOAD_TYPE,
  SIMPLE_SIGNING_TYPE,
  digestMatchesManifest,
  identityProblem,
  parseSignaturePayload,
} from './signature-payload.js';
import {
  acceptAnythingPolicy,
  imageDockerReference,
  loadPolicy,
  policyIdentity,
  scopeFor,
  type KeySource,
  type PolicyLocation,
  type PolicyPaths,
  type PolicyRequirement,
  type PolicyScope,
  type SignaturePolicy,
} from './signature-policy.js';
import type { SigstoreSignature } from './signature-sources.js';
import type { FetchedManifest, ImageReference, ImageSource } from './types.js';

export interface TrustOptions {
  /** Where the policy comes from (`--signature-policy`, a mounted root); default: containers/image's files. */
  policyPaths?: PolicyPaths;
  registriesDPaths?: RegistriesDPaths;
  /** `--enforce-container-sigpolicy`: refuse images the policy would accept unsigned. */
  enforce?: boolean;
}

/** What the policy decided for an accepted image, for logs and status. */
export interface TrustVerdict {
  scope: string;
  /** e.g. "sigstoreSigned: signature 1 of 1 accepted"; empty when no signature was needed. */
  signatures: string[];
}

type Needed = 'none' | 'signed';

/** One pull's view of the policy: loaded once, then asked about one image. */
export class ImageTrust {
  private registriesD: Promise<RegistriesD> | null = null;
  private gpg: Promise<typeof import('./gpg-verify.js')> | null = null;
  private sources: Promise<typeof import('./signature-sources.js')> | null = null;
  /** Per reference: checkEnforced and check ask twice, and podman info is slow. */
  private readonly scopes = new Map<string, Promise<PolicyScope>>();

  private constructor(
    readonly policy: SignaturePolicy,
    /** False when no policy file existed and acceptAnythingPolicy stands in. */
    readonly fromFile: boolean,
    private readonly options: TrustOptions,
  ) {}

  static async load(options: TrustOptions = {}): Promise<ImageTrust> {
    const policy = await loadPolicy(options.policyPaths);
    return new ImageTrust(policy ?? acceptAnythingPolicy('(no policy file: /etc/containers/policy.json is absent)'), policy !== null, options);
  }

  /** `--signature-policy FILE` (else containers/image's files) and `--enforce-container-sigpolicy`. */
  static forFlags(signaturePolicy: string | undefined, enforce: boolean | undefined): Promise<ImageTrust> {
    return ImageTrust.load({ ...(signaturePolicy !== undefined ? { policyPaths: { explicit: signaturePolicy } } : {}), ...(enforce ? { enforce } : {}) });
  }

  /** A given policy (tests, bench). */
  static of(policy: SignaturePolicy, options: TrustOptions = {}): ImageTrust {
    return new ImageTrust(policy, true, options);
  }

  /** Scope lookup; resolves paths and asks podman for its store only when the policy needs them. */
  async scopeOf(ref: ImageReference): Promise<PolicyScope> {
    const key = formatReference(ref);
    let scope = this.scopes.get(key);
    if (!scope) {
      scope = this.locate(ref).then((location) => scopeFor(this.policy, policyIdentity(ref, location)));
      this.scopes.set(key, scope);
    }
    return scope;
  }

  private async locate(ref: ImageReference): Promise<PolicyLocation> {
    const transport = this.policy.transports.get(ref.transport === 'registry' ? 'docker' : ref.transport);
    const specific = transport !== undefined && [...transport.keys()].some((s) => s !== '');
    if (!specific) return {};
    if (ref.transport === 'oci' || ref.transport === 'oci-archive') {
      return { resolvedPath: await realpath(ref.name).catch(() => resolve(ref.name)) };
    }
    if (ref.transport === 'containers-storage') {
      const { run } = await import('../core/exec.js');
      const out = await run({
        description: 'Asking podman where its image store is (for the signature policy scopes)',
        argv: ['podman', 'info', '--format', '{{.Store.GraphDriverName}}\t{{.Store.GraphRoot}}'],
      });
      const [driver, graphRoot] = out.stdout.trim().split('\t');
      if (driver && graphRoot) return { store: { driver, graphRoot } };
    }
    return {};
  }

  /**
   * Step 2, before any network: with `enforce`, refuse an image the applicable policy would
   * take unsigned. Also run by check(); callers may run it early to fail fast.
   */
  async checkEnforced(ref: ImageReference, enforce: boolean = this.options.enforce ?? false): Promise<PolicyScope> {
    const scope = await this.scopeOf(ref);
    if (enforce && needed(scope.requirements) === 'none' && !scope.requirements.some((r) => r.type === 'reject')) {
      throw new UserError(
        `--enforce-container-sigpolicy: the signature policy ${this.policy.source} (${scope.describe}) would accept ${formatReference(ref)} without any signature`,
        {
          hint: this.fromFile
            ? `require a signature for it in ${this.policy.source} (a signedBy or sigstoreSigned requirement for its scope), or drop --enforce-container-sigpolicy`
            : 'write /etc/containers/policy.json with a signedBy or sigstoreSigned requirement for this image, or drop --enforce-container-sigpolicy',
        },
      );
    }
    return scope;
  }

  /**
   * What needs no manifest, before any network: the enforce check, and a `reject` in the
   * scope (as containers/image, which refuses those without reading the image). Also run
   * by check().
   */
  async precheck(ref: ImageReference): Promise<PolicyScope> {
    const scope = await this.checkEnforced(ref);
    const rejecting = scope.requirements.findIndex((r) => r.type === 'reject');
    if (rejecting !== -1) throw this.refused(ref, null, scope, rejecting, 'this scope rejects every image');
    return scope;
  }

  private refused(ref: ImageReference, digest: string | null, scope: PolicyScope, index: number, why: string): UserError {
    const requirement = scope.requirements[index]!;
    const which = scope.requirements.length > 1 ? `requirement ${index + 1} of ${scope.requirements.length} (${requirement.type})` : requirement.type;
    return new UserError(`image ${formatReference(ref)}${digest !== null ? ` (${digest})` : ''} is refused by the signature policy ${this.policy.source}, ${scope.describe}, ${which}: ${why}`, {
      hint: refusalHint(requirement),
    });
  }

  /**
   * Start loading what checking `ref` will need (signature modules, registries.d), so it
   * overlaps the manifest download; failures surface when check() awaits the same work.
   */
  warmUp(scope: PolicyScope, ref: ImageReference): void {
    const types = new Set(scope.requirements.map((r) => r.type));
    if (!types.has('signedBy') && !types.has('sigstoreSigned')) return;
    const quiet = (p: Promise<unknown>): void => void p.catch(() => undefined);
    quiet(this.signatureSources());
    if (ref.transport === 'registry') quiet(this.loadRegistriesD());
    if (types.has('signedBy')) quiet(this.gpgVerify());
  }

  private signatureSources(): Promise<typeof import('./signature-sources.js')> {
    return (this.sources ??= import('./signature-sources.js'));
  }

  private gpgVerify(): Promise<typeof import('./gpg-verify.js')> {
    return (this.gpg ??= import('./gpg-verify.js'));
  }

  private loadRegistriesD(): Promise<RegistriesD> {
    return (this.registriesD ??= import('./registries-d.js').then((m) => m.loadRegistriesD(this.options.registriesDPaths)));
  }

  /** Steps 1–3 for the manifest `source` served; throws a UserError when the image is refused. */
  async check(source: ImageSource, manifest: FetchedManifest, signal?: AbortSignal): Promise<TrustVerdict> {
    const ref = source.reference;
    const scope = await this.precheck(ref);
    const notes: string[] = [];
    for (const [i, requirement] of scope.requirements.entries()) {
      const refusal = await this.refusal(requirement, source, manifest, signal, notes);
      if (refusal !== null) throw this.refused(ref, manifest.digest, scope, i, refusal);
    }
    return { scope: scope.describe, signatures: notes };
  }

  /** Null when `requirement` accepts the image, else why not. */
  private async refusal(requirement: PolicyRequirement, source: ImageSource, manifest: FetchedManifest, signal: AbortSignal | undefined, notes: string[]): Promise<string | null> {
    switch (requirement.type) {
      case 'insecureAcceptAnything':
        return null;
      case 'reject':
        return 'this scope rejects every image';
      case 'signedBy':
        return this.gpgRefusal(requirement, source, manifest, signal, notes);
      case 'sigstoreSigned':
        return this.sigstoreRefusal(requirement, source, manifest, signal, notes);
    }
  }

  private async storageFor(ref: ImageReference): Promise<Required<SignatureStorage> | null> {
    const docker = imageDockerReference(ref);
    if (ref.transport !== 'registry' || docker === null) return null;
    const [config, { signatureStorageFor }] = await Promise.all([this.loadRegistriesD(), import('./registries-d.js')]);
    return signatureStorageFor(config, docker);
  }

  private async gpgRefusal(
    requirement: Extract<PolicyRequirement, { type: 'signedBy' }>,
    source: ImageSource,
    manifest: FetchedManifest,
    signal: AbortSignal | undefined,
    notes: string[],
  ): Promise<string | null> {
    const ref = source.reference;
    const storage = await this.storageFor(ref);
    if (storage === null) return `no signature found: ${ref.transport} images carry no GPG signatures we can read`;
    const { fetchLookasideSignatures } = await this.signatureSources();
    // The keyring is written while the signatures download.
    const keyringMade = Promise.all([readKeys(requirement.keys, this.policy.source), this.gpgVerify()]).then(([keys, { GpgKeyring }]) => GpgKeyring.create(keys));
    let found;
    try {
      found = await fetchLookasideSignatures(storage.lookaside, imageDockerReference(ref)!, manifest.digest, signal);
    } catch (err) {
      await keyringMade.then((k) => k[Symbol.asyncDispose](), () => undefined);
      throw err;
    }
    await using keyring = await keyringMade;
    if (found.signatures.length === 0) return `no signature found (looked for ${found.firstUrl})`;
    const reasons: string[] = [];
    for (const [i, signature] of found.signatures.entries()) {
      const outcome = await keyring.verify(signature);
      if (!outcome.ok) {
        reasons.push(outcome.unknownKey !== undefined ? `signed by another key (${outcome.unknownKey}, not in the policy's keys)` : outcome.why);
        continue;
      }
      const problem = payloadProblem(outcome.payload, SIMPLE_SIGNING_TYPE, manifest, requirement, ref);
      if (problem === null) {
        notes.push(`signedBy: signature ${i + 1} by key ${outcome.primaryKey} accepted`);
        return null;
      }
      reasons.push(problem);
    }
    return summarise(reasons);
  }

  private async sigstoreRefusal(
    requirement: Extract<PolicyRequirement, { type: 'sigstoreSigned' }>,
    source: ImageSource,
    manifest: FetchedManifest,
    signal: AbortSignal | undefined,
    notes: string[],
  ): Promise<string | null> {
    const ref = source.reference;
    const storage = await this.storageFor(ref);
    if (storage === null) return `no signature found: ${ref.transport} images carry no sigstore signatures we can read`;
    if (!storage.useSigstoreAttachments) {
      return `no signature found: registries.d does not enable use-sigstore-attachments for ${ref.name}, so none were looked for`;
    }
    const { fetchSigstoreAttachments, SIGSTORE_SIGNATURE_ANNOTATION, SIGSTORE_SIGNATURE_MEDIA_TYPE } = await this.signatureSources();
    let signatures: SigstoreSignature[];
    try {
      signatures = await fetchSigstoreAttachments(source, manifest.digest, signal);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`cannot read the sigstore signatures of ${formatReference(ref)}: ${(err as Error).message}`, { hint: 'the signatures in the registry are damaged; sign the image again', cause: err });
    }
    if (signatures.length === 0) return `no signature found (no sigstore attachment ${manifest.digest.replace(':', '-')}.sig in ${ref.name})`;
    const keys = (await readKeys(requirement.keys, this.policy.source)).map((k, i) => publicKey(k, i, this.policy.source));
    const reasons: string[] = [];
    for (const [i, signature] of signatures.entries()) {
      const problem = sigstoreProblem(signature, keys, SIGSTORE_SIGNATURE_MEDIA_TYPE, SIGSTORE_SIGNATURE_ANNOTATION) ?? payloadProblem(signature.payload, SIGSTORE_PAYLOAD_TYPE, manifest, requirement, ref);
      if (problem === null) {
        notes.push(`sigstoreSigned: signature ${i + 1} of ${signatures.length} accepted`);
        return null;
      }
      reasons.push(problem);
    }
    return summarise(reasons);
  }
}

function needed(requirements: readonly PolicyRequirement[]): Needed {
  return requirements.some((r) => r.type === 'signedBy' || r.type === 'sigstoreSigned') ? 'signed' : 'none';
}

function summarise(reasons: string[]): string {
  return reasons.length === 1 ? reasons[0]! : `none of the ${reasons.length} signatures is accepted: ${reasons.map((r, i) => `(${i + 1}) ${r}`).join('; ')}`;
}

function refusalHint(requirement: PolicyRequirement): string {
  switch (requirement.type) {
    case 'reject':
      return 'the policy does not allow this image at all; add a scope for it to policy.json if it should be';
    case 'signedBy':
      return 'sign the image with `skopeo copy --sign-by FINGERPRINT` into a registry whose lookaside storage registries.d names, with a key the policy lists';
    case 'sigstoreSigned':
      return 'sign the image with `skopeo copy --sign-by-sigstore-private-key KEY` (use-sigstore-attachments enabled in registries.d) with the key pair whose public half the policy lists';
    default:
      return 'check the signature policy';
  }
}

/** The payload checks shared by both signature kinds: digest, then identity. */
function payloadProblem(
  payload: Uint8Array,
  type: string,
  manifest: FetchedManifest,
  requirement: Extract<PolicyRequirement, { type: 'signedBy' | 'sigstoreSigned' }>,
  ref: ImageReference,
): string | null {
  let parsed;
  try {
    parsed = parseSignaturePayload(payload, type);
  } catch (err) {
    return `the signed payload is not a valid ${type}: ${(err as Error).message}`;
  }
  if (!digestMatchesManifest(parsed.manifestDigest, manifest.bytes)) {
    return `digest mismatch: the signature is for manifest ${parsed.manifestDigest}, not ${manifest.digest}`;
  }
  const problem = identityProblem(requirement.signedIdentity, imageDockerReference(ref), parsed.dockerReference);
  return problem === null ? null : `identity mismatch: ${problem}`;
}

async function readKeys(keys: KeySource, policySource: string): Promise<Uint8Array[]> {
  if (keys.kind === 'data') return keys.data;
  return Promise.all(
    keys.paths.map(async (path) => {
      try {
        return new Uint8Array(await readFile(path));
      } catch (err) {
        throw new UserError(`cannot read the key ${path} named by ${policySource}: ${(err as Error).message}`, { hint: 'install the public key there, or fix the keyPath in the policy', cause: err });
      }
    }),
  );
}

function publicKey(data: Uint8Array, index: number, policySource: string): KeyObject {
  try {
    const text = Buffer.from(data).toString('utf8');
    return text.includes('-----BEGIN') ? createPublicKey(text) : createPublicKey({ key: Buffer.from(data), format: 'der', type: 'spki' });
  } catch (err) {
    throw new UserError(`sigstore public key ${index + 1} of ${policySource} cannot be read: ${(err as Error).message}`, {
      hint: 'give the PEM public key (`-----BEGIN PUBLIC KEY-----`) that `skopeo generate-sigstore-key` or `cosign generate-key-pair` wrote',
    });
  }
}

/** Null when one of `keys` made this sigstore signature, else why not. */
function sigstoreProblem(signature: SigstoreSignature, keys: readonly KeyObject[], mediaType: string, annotation: string): string | null {
  if (signature.mediaType !== mediaType) return `unexpected signature media type ${signature.mediaType}`;
  const encoded = signature.annotations[annotation];
  if (typeof encoded !== 'string' || encoded === '') return `the signature has no ${annotation} annotation`;
  const raw = Buffer.from(encoded, 'base64');
  for (const key of keys) {
    try {
      const algorithm = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
      if (verifySignature(algorithm, signature.payload, key, raw)) return null;
    } catch {
      // a key of another kind cannot have made it: try the next
    }
  }
  return keys.length === 1 ? 'signed by another key (or altered): it does not verify with the policy\'s public key' : `signed by another key (or altered): it verifies with none of the policy's ${keys.length} public keys`;
}

