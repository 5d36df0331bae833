/**
 * containers-policy.json(5): which images may be pulled, and what signatures they need.
 *
 * The parser takes text and is as strict as containers/image: an unknown or duplicated
 * field, an empty requirement list or a malformed requirement rejects the whole file, and a
 * requirement we cannot verify (Fulcio / Rekor / PKI sigstore, X.509 keys, signedBaseLayer)
 * is refused as "not supported" rather than skipped. `scopeFor` is pure: the policy
 * identity of an image (its most specific scope, then its namespaces) picks one requirement
 * list, the most specific match winning; the loader reads the file from where
 * containers/image looks for it.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, posix } from 'node:path';
import { UserError } from '../core/errors.js';
import { formatDockerReference, parseDockerReference, type DockerReference } from './reference.js';
import { exactFields, parseStrictJson } from './strict-json.js';
import type { ImageReference } from './types.js';

/** What identity a signature must claim (the `signedIdentity` of a requirement). */
export type SignedIdentity =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: DockerReference }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

/** Public keys, from files or inline (keyData is the file's bytes, base64-encoded in JSON). */
export type KeySource = { kind: 'paths'; paths: string[] } | { kind: 'data'; data: Uint8Array[] };

export type PolicyRequirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | { type: 'signedBy'; keys: KeySource; signedIdentity: SignedIdentity }
  | { type: 'sigstoreSigned'; keys: KeySource; signedIdentity: SignedIdentity };

export interface SignaturePolicy {
  /** Where it was read from, for messages. */
  source: string;
  default: PolicyRequirement[];
  /** transport name (`docker`, `oci`, …) → scope (`""` = the transport's default) → requirements. */
  transports: ReadonlyMap<string, ReadonlyMap<string, PolicyRequirement[]>>;
}

/** The policy's name for each of our transports. */
export const POLICY_TRANSPORT: Readonly<Record<ImageReference['transport'], string>> = {
  registry: 'docker',
  oci: 'oci',
  'oci-archive': 'oci-archive',
  'docker-archive': 'docker-archive',
  'containers-storage': 'containers-storage',
};

function invalid(source: string, what: string): UserError {
  return new UserError(`${source} is not a valid containers-policy.json: ${what}`, {
    hint: 'see containers-policy.json(5); e.g. {"default": [{"type": "reject"}], "transports": {"docker": {"registry.example.com/os": [{"type": "sigstoreSigned", "keyPath": "/etc/pki/os.pub"}]}}}',
  });
}

function notSupported(source: string, where: string, what: string): UserError {
  return new UserError(`${source}: ${where}: ${what} is not supported`, {
    hint: 'bootc verifies GPG simple signing (signedBy with GPGKeys) and sigstore signatures made with a public key (sigstoreSigned keyPath/keyData); use one of those for this scope',
  });
}

/** Go's []byte in JSON: standard base64, strictly. */
function decodeBase64(text: unknown, where: string, source: string): Uint8Array {
  if (typeof text !== 'string' || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    throw invalid(source, `${where} must be base64-encoded key data`);
  }
  return new Uint8Array(Buffer.from(text, 'base64'));
}

function nonEmptyString(value: unknown, where: string, source: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(source, `${where} must be a non-empty string`);
  return value;
}

/** Exactly one of the key fields; `rest` are fields that exist upstream but we refuse. */
function keySource(fields: Record<string, unknown>, where: string, source: string): KeySource {
  const given = ['keyPath', 'keyPaths', 'keyData', 'keyDatas'].filter((k) => fields[k] !== undefined);
  if (given.length !== 1) throw invalid(source, `${where} needs exactly one of keyPath, keyPaths, keyData${given.length > 1 ? ` (has ${given.join(', ')})` : ''}`);
  const key = given[0]!;
  const value = fields[key];
  if (key === 'keyPath') return { kind: 'paths', paths: [nonEmptyString(value, `${where}.keyPath`, source)] };
  if (key === 'keyData') return { kind: 'data', data: [decodeBase64(value, `${where}.keyData`, source)] };
  if (!Array.isArray(value) || value.length === 0) throw invalid(source, `${where}.${key} must be a non-empty array`);
  return key === 'keyPaths'
    ? { kind: 'paths', paths: value.map((v, i) => nonEmptyString(v, `${where}.keyPaths[${i}]`, source)) }
    : { kind: 'data', data: value.map((v, i) => decodeBase64(v, `${where}.keyDatas[${i}]`, source)) };
}

function dockerReferenceField(value: unknown, where: string, source: string): DockerReference {
  const text = nonEmptyString(value, where, source);
  try {
    return parseDockerReference(text);
  } catch (err) {
    throw invalid(source, `${where}: ${(err as Error).message}`);
  }
}

/** A `remapIdentity` prefix: host[:port], a namespace or a repository, fully expanded. */
function remapPrefix(value: unknown, where: string, source: string): string {
  const text = nonEmptyString(value, where, source);
  const host = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
  if (host.test(text) && !text.includes('/')) return text;
  let ref: DockerReference;
  try {
    ref = parseDockerReference(text);
  } catch (err) {
    throw invalid(source, `${where}: ${(err as Error).message}`);
  }
  if (ref.tag !== undefined || ref.digest !== undefined || ref.name !== text) {
    throw invalid(source, `${where} "${text}" must be a host[:port], namespace or repository in fully expanded form (no tag or digest; e.g. docker.io/library, not library)`);
  }
  return text;
}

function signedIdentity(value: unknown, where: string, source: string): SignedIdentity {
  if (value === undefined) return { type: 'matchRepoDigestOrExact' };
  const fields = wrap(source, () => exactFields(value, ['type', 'dockerReference', 'dockerRepository', 'prefix', 'signedPrefix'], where));
  const only = (allowed: string[]): void => {
    wrap(source, () => exactFields(fields, ['type', ...allowed], where));
  };
  switch (fields['type']) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      only([]);
      return { type: fields['type'] };
    case 'exactReference': {
      only(['dockerReference']);
      const ref = dockerReferenceField(fields['dockerReference'], `${where}.dockerReference`, source);
      if (ref.tag === undefined && ref.digest === undefined) throw invalid(source, `${where}.dockerReference "${formatDockerReference(ref)}" needs a tag or digest`);
      return { type: 'exactReference', dockerReference: ref };
    }
    case 'exactRepository': {
      only(['dockerRepository']);
      return { type: 'exactRepository', dockerRepository: dockerReferenceField(fields['dockerRepository'], `${where}.dockerRepository`, source).name };
    }
    case 'remapIdentity':
      only(['prefix', 'signedPrefix']);
      return {
        type: 'remapIdentity',
        prefix: remapPrefix(fields['prefix'], `${where}.prefix`, source),
        signedPrefix: remapPrefix(fields['signedPrefix'], `${where}.signedPrefix`, source),
      };
    default:
      throw invalid(source, `${where}.type ${JSON.stringify(fields['type'])} is not a signedIdentity type (matchExact, matchRepoDigestOrExact, matchRepository, exactReference, exactRepository, remapIdentity)`);
  }
}

function wrap<T>(source: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw invalid(source, (err as Error).message);
  }
}

const SIGSTORE_UNSUPPORTED: Readonly<Record<string, string>> = {
  fulcio: 'a Fulcio (keyless) sigstoreSigned requirement',
  pki: 'a PKI (X.509 certificate) sigstoreSigned requirement',
  rekorPublicKeyPath: 'Rekor transparency-log verification (rekorPublicKeyPath)',
  rekorPublicKeyPaths: 'Rekor transparency-log verification (rekorPublicKeyPaths)',
  rekorPublicKeyData: 'Rekor transparency-log verification (rekorPublicKeyData)',
  rekorPublicKeyDatas: 'Rekor transparency-log verification (rekorPublicKeyDatas)',
};

function requirement(value: unknown, where: string, source: string): PolicyRequirement {
  const type = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)['type'] : undefined;
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject':
      wrap(source, () => exactFields(value, ['type'], where));
      return { type };
    case 'signedBy': {
      const fields = wrap(source, () => exactFields(value, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity'], where));
      if (fields['keyType'] !== 'GPGKeys') {
        if (typeof fields['keyType'] === 'string' && fields['keyType'] !== '') throw notSupported(source, where, `keyType ${JSON.stringify(fields['keyType'])}`);
        throw invalid(source, `${where}.keyType must be "GPGKeys"`);
      }
      if (fields['keyDatas'] !== undefined) throw invalid(source, `${where} has unknown field "keyDatas"`);
      return { type: 'signedBy', keys: keySource(fields, where, source), signedIdentity: signedIdentity(fields['signedIdentity'], `${where}.signedIdentity`, source) };
    }
    case 'sigstoreSigned': {
      const fields = wrap(source, () =>
        exactFields(value, ['type', 'keyPath', 'keyPaths', 'keyData', 'keyDatas', 'signedIdentity', ...Object.keys(SIGSTORE_UNSUPPORTED)], where),
      );
      const refused = Object.keys(SIGSTORE_UNSUPPORTED).find((k) => fields[k] !== undefined);
      if (refused !== undefined) throw notSupported(source, where, SIGSTORE_UNSUPPORTED[refused]!);
      return { type: 'sigstoreSigned', keys: keySource(fields, where, source), signedIdentity: signedIdentity(fields['signedIdentity'], `${where}.signedIdentity`, source) };
    }
    case 'signedBaseLayer':
      throw notSupported(source, where, 'the signedBaseLayer requirement');
    default:
      throw invalid(source, `${where}: ${type === undefined ? 'a requirement needs a "type"' : `unknown requirement type ${JSON.stringify(type)}`}`);
  }
}

function requirementList(value: unknown, where: string, source: string): PolicyRequirement[] {
  if (!Array.isArray(value)) throw invalid(source, `${where} must be an array of requirements`);
  if (value.length === 0) throw invalid(source, `${where} is empty; an empty list would mean nothing; write [{"type": "insecureAcceptAnything"}] or [{"type": "reject"}]`);
  return value.map((r, i) => requirement(r, `${where}[${i}]`, source));
}

/** Is `scope` a valid scope of `transport`? An error message, or null. */
export function scopeProblem(transport: string, scope: string): string | null {
  if (scope === '') return null;
  switch (transport) {
    case 'docker':
    case 'atomic':
      return null; // any prefix of a reference, or *.domain; a scope that never matches is harmless
    case 'oci':
    case 'oci-archive':
    case 'dir': {
      const path = transport === 'oci' ? scope.replace(/:[^/]*$/, '') : scope;
      if (!path.startsWith('/')) return `scope "${scope}" must be an absolute path`;
      if (path === '/') return 'scope "/" is not allowed; use the transport default ""';
      if (path.endsWith('/') || posix.normalize(path) !== path) return `scope "${scope}" must be a clean path (no //, . or .. components, no trailing /)`;
      return null;
    }
    case 'docker-archive':
    case 'docker-daemon':
    case 'tarball':
      return `${transport} supports only the transport default scope ""`;
    case 'containers-storage':
      return /^\[[^\]]+\]/.test(scope) ? null : `scope "${scope}" must start with a [driver@graphroot] store specifier`;
    default:
      return null; // transports we do not implement are parsed, not validated
  }
}

/** Parse policy.json text. `source` names the file in errors. */
export function parsePolicy(text: string, source: string): SignaturePolicy {
  const top = wrap(source, () => exactFields(parseStrictJson(text, source), ['default', 'transports'], 'the top level'));
  if (top['default'] === undefined) throw invalid(source, 'the "default" requirement list is missing');
  const defaults = requirementList(top['default'], 'default', source);
  const transports = new Map<string, Map<string, PolicyRequirement[]>>();
  if (top['transports'] !== undefined) {
    const byTransport = wrap(source, () => exactFields(top['transports'], Object.keys(top['transports'] ?? {}), 'transports'));
    for (const [transport, scopesValue] of Object.entries(byTransport)) {
      if (transport === '') throw invalid(source, 'a transport name is empty');
      const scopes = wrap(source, () => exactFields(scopesValue, Object.keys(scopesValue ?? {}), `transports.${transport}`));
      const parsed = new Map<string, PolicyRequirement[]>();
      for (const [scope, list] of Object.entries(scopes)) {
        const problem = scopeProblem(transport, scope);
        if (problem !== null) throw invalid(source, `transports.${transport}: ${problem}`);
        parsed.set(scope, requirementList(list, `transports.${transport}[${JSON.stringify(scope)}]`, source));
      }
      transports.set(transport, parsed);
    }
  }
  return { source, default: defaults, transports };
}

/** Where the requirements for one image come from, and what they are. */
export interface PolicyScope {
  /** `default`, `docker ""` (transport default) or `docker "quay.io/example"`. */
  describe: string;
  requirements: PolicyRequirement[];
}

/** How an image is named for policy lookups: its most specific scope, then wider ones. */
export interface PolicyIdentity {
  /** The policy's transport name. */
  transport: string;
  /** The most specific scope; '' when the transport has none (docker-archive). */
  identity: string;
  /** Wider scopes, most specific first. */
  namespaces: string[];
}

/** containers/image's lookup: identity, then namespaces, then the transport's "", then default. */
export function scopeFor(policy: SignaturePolicy, id: PolicyIdentity): PolicyScope {
  const scopes = policy.transports.get(id.transport);
  if (scopes) {
    for (const scope of id.identity === '' ? id.namespaces : [id.identity, ...id.namespaces]) {
      const requirements = scopes.get(scope);
      if (requirements) return { describe: `transports.${id.transport} ${JSON.stringify(scope)}`, requirements };
    }
    const transportDefault = scopes.get('');
    if (transportDefault) return { describe: `transports.${id.transport} ""`, requirements: transportDefault };
  }
  return { describe: 'default', requirements: policy.default };
}

/**
 * The docker transport's scopes: `host/ns/repo:tag` (or `@digest`), then `host/ns/repo`,
 * `host/ns`, `host`, then `*.` wildcards of the host's parent domains (port dropped).
 */
export function dockerNamespaces(ref: DockerReference): PolicyIdentity {
  const namespaces: string[] = [];
  let name = ref.name;
  for (;;) {
    namespaces.push(name);
    const slash = name.lastIndexOf('/');
    if (slash === -1) break;
    name = name.slice(0, slash);
  }
  let host = name.startsWith('[') ? name : name.split(':')[0]!;
  for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.')) {
    host = host.slice(dot + 1);
    namespaces.push(`*.${host}`);
  }
  return { transport: 'docker', identity: formatDockerReference(ref), namespaces };
}

/** A path and its parent directories, without "/". */
function pathNamespaces(path: string): string[] {
  const out: string[] = [];
  for (let p = path; p !== '' && p !== '/'; p = p.slice(0, p.lastIndexOf('/'))) out.push(p);
  return out;
}

/** Where an image lives, as far as policy scopes need it (the loader finds these). */
export interface PolicyLocation {
  /** oci / oci-archive: the layout's or archive's path, absolute and without symlinks. */
  resolvedPath?: string;
  /** containers-storage: the store, e.g. { driver: 'overlay', graphRoot: '/var/lib/containers/storage' }. */
  store?: { driver: string; graphRoot: string };
}

/** The docker reference an image carries (registry, containers-storage by name), else null. */
export function imageDockerReference(ref: ImageReference): DockerReference | null {
  if (ref.transport !== 'registry' && ref.transport !== 'containers-storage') return null;
  if (ref.registry === undefined) return null; // containers-storage by image ID
  return { name: ref.name, ...(ref.tag !== undefined ? { tag: ref.tag } : {}), ...(ref.digest !== undefined ? { digest: ref.digest } : {}) };
}

export function policyIdentity(ref: ImageReference, location: PolicyLocation = {}): PolicyIdentity {
  const transport = POLICY_TRANSPORT[ref.transport];
  switch (ref.transport) {
    case 'registry':
      return dockerNamespaces(imageDockerReference(ref)!);
    case 'oci':
    case 'oci-archive': {
      const path = location.resolvedPath ?? ref.name;
      // containers/image names an oci: image by its directory alone; the `dir:tag` scope the
      // man page documents is tried first here, so that form means what it says.
      if (ref.transport === 'oci' && ref.tag !== undefined) return { transport, identity: `${path}:${ref.tag}`, namespaces: pathNamespaces(path) };
      return { transport, identity: path, namespaces: pathNamespaces(path).slice(1) };
    }
    case 'docker-archive':
      return { transport, identity: '', namespaces: [] };
    case 'containers-storage': {
      if (!location.store) return { transport, identity: '', namespaces: [] };
      const spec = `[${location.store.driver}@${location.store.graphRoot}]`;
      const driverless = `[${location.store.graphRoot}]`;
      const docker = imageDockerReference(ref);
      if (docker === null) return { transport, identity: `${spec}@${ref.name}`, namespaces: [spec, driverless] };
      const names = dockerNamespaces({ name: docker.name }).namespaces.filter((n) => !n.startsWith('*.'));
      const tagged = docker.tag !== undefined && docker.digest !== undefined ? [`${spec}${docker.name}:${docker.tag}`] : [];
      return { transport, identity: spec + formatDockerReference(docker), namespaces: [...tagged, ...names.map((n) => spec + n), spec, driverless] };
    }
  }
}

export interface PolicyPaths {
  /** `--signature-policy FILE`: this file only. */
  explicit?: string;
  /** Defaults to os.homedir(). */
  homeDir?: string;
  /** Defaults to process.getuid(). */
  uid?: number;
  /** Prefix for /etc (a mounted root); defaults to `/`. */
  root?: string;
}

export const SYSTEM_POLICY = '/etc/containers/policy.json';

/** The files containers/image would read, in order; the first that exists is used. */
export function policyCandidates(paths: PolicyPaths = {}): string[] {
  if (paths.explicit !== undefined) return [paths.explicit];
  const system = join(paths.root ?? '/', SYSTEM_POLICY);
  const uid = paths.uid ?? process.getuid?.() ?? 0;
  return uid === 0 ? [system] : [join(paths.homeDir ?? homedir(), '.config/containers/policy.json'), system];
}

/** The policy in force, or null when no policy file exists (only an explicit file must exist). */
export async function loadPolicy(paths: PolicyPaths = {}): Promise<SignaturePolicy | null> {
  for (const file of policyCandidates(paths)) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && paths.explicit === undefined) continue;
      throw new UserError(`cannot read the signature policy ${file}: ${(err as Error).message}`, {
        hint: paths.explicit !== undefined ? 'check the --signature-policy path' : 'check its permissions',
        cause: err,
      });
    }
    return parsePolicy(text, file);
  }
  return null;
}

/** The policy that stands in when no policy file exists: accept anything, as a fresh host does. */
export function acceptAnythingPolicy(source: string): SignaturePolicy {
  return { source, default: [{ type: 'insecureAcceptAnything' }], transports: new Map() };
}
