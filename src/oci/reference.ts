/**
 * Image references as bootc, skopeo and podman spell them: `[transport:]name[:tag][@digest]`.
 *
 * Transports (containers-transports(5)):
 * - `registry` (the default, also written `docker://NAME` or `registry:NAME`): a repository in
 *   a registry, normalised as podman does (`debian` → `docker.io/library/debian:latest`).
 * - `oci:DIR[:REF]` and `oci-archive:FILE[:REF]`: an OCI image layout (directory or tar) and
 *   optionally the `org.opencontainers.image.ref.name` inside it.
 * - `docker-archive:FILE`: a `docker save` tarball.
 * - `containers-storage:NAME`: the local podman store, normalised like a registry name.
 *
 * The grammar is the one of the distribution reference spec (docker/distribution
 * `reference` package); bad input is a UserError saying what is wrong and how a valid
 * reference looks. Parsing is pure; nothing here touches the network or the disk.
 */
import { UserError } from '../core/errors.js';
import type { ImageReference, Transport } from './types.js';

/** Where short names go, as in podman without unqualified-search registries. */
export const DOCKER_HUB = 'docker.io';
/** Docker Hub's official images live under this namespace. */
const DOCKER_HUB_OFFICIAL_NAMESPACE = 'library';
/** Old spellings of Docker Hub that mean the same registry. */
const DOCKER_HUB_ALIASES = new Set(['index.docker.io', 'registry-1.docker.io']);
const DEFAULT_TAG = 'latest';

/** distribution/reference: the whole repository name including the domain. */
const NAME_TOTAL_LENGTH_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST_ALGORITHM = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/;
/** The algorithms we can verify, with the exact length of their lowercase hex encoding. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };
const IMAGE_ID = /^[a-f0-9]{64}$/;
/** image-spec annotations.md: the grammar of `org.opencontainers.image.ref.name`. */
const OCI_REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

const VALID_EXAMPLES =
  'a valid reference looks like `quay.io/example/os:latest`, `debian:12`, ' +
  '`registry.example.com:5000/team/os@sha256:<64 hex digits>`, `oci:/path/to/layout:tag`, ' +
  '`oci-archive:/path/os.tar`, `docker-archive:/path/os.tar` or `containers-storage:localhost/os:tag`';

function invalid(input: string, what: string, hint: string = VALID_EXAMPLES): UserError {
  return new UserError(`invalid image reference "${input}": ${what}`, { hint });
}

/** Transport prefixes as users type them, longest first so `docker://` wins over `docker:`. */
const TRANSPORT_PREFIXES: ReadonlyArray<readonly [string, Transport]> = [
  // ostree-ext's spellings, which bootc users carry over from rpm-ostree; we do not verify
  // signatures through ostree, so both mean a plain registry pull.
  ['ostree-unverified-registry:', 'registry'],
  ['ostree-unverified-image:docker://', 'registry'],
  ['docker://', 'registry'],
  ['registry:', 'registry'],
  ['oci-archive:', 'oci-archive'],
  ['oci:', 'oci'],
  ['docker-archive:', 'docker-archive'],
  ['containers-storage:', 'containers-storage'],
];

/** Transports that exist in containers-image but that we do not implement. */
const UNSUPPORTED_TRANSPORTS: Readonly<Record<string, string>> = {
  'docker-daemon': 'export it first: `docker save IMAGE -o image.tar`, then use `docker-archive:image.tar`',
  dir: 'copy it to an OCI layout first: `skopeo copy dir:PATH oci:LAYOUT:tag`, then use `oci:LAYOUT:tag`',
  ostree: 'the ostree transport is not supported; use a registry or an OCI layout',
  sif: 'convert it to an OCI layout first',
  tarball: 'convert it to an OCI layout first',
};

/** Parse a reference. `transport` is the default when the string names none (bootc `--transport`). */
export function parseReference(input: string, transport?: Transport): ImageReference {
  const text = input.trim();
  if (text === '') throw invalid(input, 'it is empty');
  const explicit = splitTransport(text);
  if (explicit && transport && explicit.transport !== transport) {
    throw invalid(input, `it names transport "${explicit.transport}" but "${transport}" was requested`, 'drop either the prefix or the --transport option');
  }
  const chosen = explicit?.transport ?? transport ?? 'registry';
  const rest = explicit ? explicit.rest : text;
  switch (chosen) {
    case 'registry':
      return parseRegistryReference(input, rest);
    case 'containers-storage':
      return parseStorageReference(input, rest);
    case 'oci':
    case 'oci-archive':
      return parseLayoutReference(input, rest, chosen);
    case 'docker-archive':
      return parseDockerArchiveReference(input, rest);
  }
}

function splitTransport(text: string): { transport: Transport; rest: string } | null {
  for (const [prefix, transport] of TRANSPORT_PREFIXES) {
    if (text.startsWith(prefix)) return { transport, rest: text.slice(prefix.length) };
  }
  if (text.startsWith('docker:')) {
    throw invalid(text, 'the docker transport is written `docker://`', `write docker://${text.slice('docker:'.length).replace(/^\/*/, '')}`);
  }
  const colon = text.indexOf(':');
  if (colon > 0) {
    const name = text.slice(0, colon);
    const advice = UNSUPPORTED_TRANSPORTS[name];
    if (advice !== undefined) throw invalid(text, `the ${name} transport is not supported`, advice);
  }
  return null;
}

interface NamedParts {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** Split and validate `name[:tag][@digest]`, normalising Docker Hub short names. */
function parseNamed(input: string, text: string): NamedParts {
  if (text === '') throw invalid(input, 'the image name is empty');
  let remainder = text;
  let digest: string | undefined;
  const at = remainder.indexOf('@');
  if (at >= 0) {
    digest = remainder.slice(at + 1);
    remainder = remainder.slice(0, at);
    validateDigest(input, digest);
  }
  let tag: string | undefined;
  const colon = remainder.lastIndexOf(':');
  if (colon > remainder.lastIndexOf('/') && colon > remainder.lastIndexOf(']')) {
    tag = remainder.slice(colon + 1);
    remainder = remainder.slice(0, colon);
    if (!TAG.test(tag)) {
      throw invalid(input, `the tag "${tag}" is not valid: a tag is 1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`);
    }
  }
  if (remainder === '') throw invalid(input, 'the image name is empty');
  if (IMAGE_ID.test(remainder)) {
    throw invalid(input, 'a 64-digit hexadecimal string is an image ID, not a repository name', 'name the image by repository and tag, or by digest (`name@sha256:…`)');
  }
  const { registry, repository } = splitRegistry(input, remainder);
  const full = `${registry}/${repository}`;
  if (full.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(input, `the repository name is ${full.length} characters long; at most ${NAME_TOTAL_LENGTH_MAX} are allowed`);
  }
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/**
 * The first path component is a registry host when it contains `.` or `:`, is `localhost`,
 * or has upper-case letters (which a repository never has); otherwise the name is on Docker
 * Hub, where one-component names are official images under `library/`.
 */
function splitRegistry(input: string, name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  const isHost = slash !== -1 && (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase());
  let registry = isHost ? first : DOCKER_HUB;
  let repository = isHost ? name.slice(slash + 1) : name;
  if (isHost && !DOMAIN.test(registry)) {
    throw invalid(input, `"${registry}" is not a valid registry host[:port]`);
  }
  if (DOCKER_HUB_ALIASES.has(registry)) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `${DOCKER_HUB_OFFICIAL_NAMESPACE}/${repository}`;
  if (repository === '') throw invalid(input, 'the repository path after the registry host is empty');
  for (const component of repository.split('/')) {
    if (component !== component.toLowerCase()) {
      throw invalid(input, `the repository name must be lowercase ("${component}")`, `write ${input.toLowerCase()}`);
    }
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(
        input,
        component === ''
          ? 'the repository path has an empty component ("//" or a trailing "/")'
          : `"${component}" is not a valid repository path component: use lowercase letters and digits, separated by ".", "_", "__" or "-"`,
      );
    }
  }
  return { registry, repository };
}

function validateDigest(input: string, digest: string): void {
  const colon = digest.indexOf(':');
  const algorithm = colon === -1 ? '' : digest.slice(0, colon);
  const encoded = colon === -1 ? '' : digest.slice(colon + 1);
  if (colon === -1 || !DIGEST_ALGORITHM.test(algorithm) || encoded === '') {
    throw invalid(input, `"${digest}" is not a digest: a digest is ALGORITHM:HEX, e.g. sha256:<64 hex digits>`);
  }
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) {
    throw invalid(input, `the digest algorithm "${algorithm}" is not supported`, 'use a sha256 (or sha512) digest');
  }
  if (encoded.length !== length || !/^[a-f0-9]+$/.test(encoded)) {
    throw invalid(input, `a ${algorithm} digest is ${length} lowercase hexadecimal digits, got "${encoded}"`);
  }
}

/**
 * A docker reference as signatures and policy.json spell it (containers/image's
 * ParseNormalizedNamed): no transport, Docker Hub names expanded, and no default tag, so
 * a bare repository stays a bare repository.
 */
export interface DockerReference {
  /** `host/path/repo`. */
  name: string;
  tag?: string;
  digest?: string;
}

export function parseDockerReference(input: string): DockerReference {
  const parts = parseNamed(input, input.trim());
  return {
    name: `${parts.registry}/${parts.repository}`,
    ...(parts.tag !== undefined ? { tag: parts.tag } : {}),
    ...(parts.digest !== undefined ? { digest: parts.digest } : {}),
  };
}

/** `name[:tag][@digest]`. */
export function formatDockerReference(ref: DockerReference): string {
  return `${ref.name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

function parseRegistryReference(input: string, text: string): ImageReference {
  if (text.startsWith('/')) {
    throw invalid(input, 'a registry reference does not start with "/"', `for a local OCI layout write oci:${text}`);
  }
  return namedReference('registry', parseNamed(input, text));
}

function namedReference(transport: 'registry' | 'containers-storage', parts: NamedParts): ImageReference {
  const ref: ImageReference = { transport, name: `${parts.registry}/${parts.repository}`, registry: parts.registry, repository: parts.repository };
  // Like podman: a name without tag or digest means `latest`.
  if (parts.tag !== undefined) ref.tag = parts.tag;
  else if (parts.digest === undefined) ref.tag = DEFAULT_TAG;
  if (parts.digest !== undefined) ref.digest = parts.digest;
  return ref;
}

function parseStorageReference(input: string, text: string): ImageReference {
  // An image ID (optionally `@ID` or `sha256:ID`) names one image in the local store.
  const id = text.replace(/^@/, '').replace(/^sha256:/, '');
  if (IMAGE_ID.test(id)) return { transport: 'containers-storage', name: id };
  if (text.startsWith('[')) {
    throw invalid(input, 'a storage specifier ([driver@root]) is not supported', 'name the image only, e.g. containers-storage:localhost/os:tag');
  }
  return namedReference('containers-storage', parseNamed(input, text));
}

/** `PATH[:REF]`: as in containers-image, the path ends at the first ":" (paths with ":" are not expressible). */
function parseLayoutReference(input: string, text: string, transport: 'oci' | 'oci-archive'): ImageReference {
  const colon = text.indexOf(':');
  const path = colon === -1 ? text : text.slice(0, colon);
  const refName = colon === -1 ? undefined : text.slice(colon + 1);
  const what = transport === 'oci' ? 'OCI layout directory' : 'OCI archive file';
  if (path === '') throw invalid(input, `the ${what} path is empty`, `write ${transport}:/path/to/${transport === 'oci' ? 'layout' : 'image.tar'}[:tag]`);
  const ref: ImageReference = { transport, name: path };
  if (refName !== undefined && refName !== '') {
    if (!OCI_REF_NAME.test(refName)) {
      throw invalid(input, `"${refName}" is not a valid image name inside an OCI layout: use letters, digits and "-._:@+/"`, `write ${transport}:${path}:tag`);
    }
    ref.tag = refName;
  }
  return ref;
}

function parseDockerArchiveReference(input: string, text: string): ImageReference {
  if (text === '') throw invalid(input, 'the archive path is empty', 'write docker-archive:/path/to/image.tar');
  if (text.includes(':')) {
    throw invalid(input, 'choosing one image inside a docker-archive is not supported', 'save only one image in the archive (`docker save IMAGE -o image.tar`) and write docker-archive:/path/to/image.tar');
  }
  return { transport: 'docker-archive', name: text };
}

/** `name[:tag][@digest]` without the transport, as bootc status shows `image`. */
export function formatImageName(ref: ImageReference): string {
  switch (ref.transport) {
    case 'registry':
    case 'containers-storage':
      return `${ref.name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
    case 'oci':
    case 'oci-archive':
      return ref.tag !== undefined ? `${ref.name}:${ref.tag}` : ref.name;
    case 'docker-archive':
      return ref.name;
  }
}

/**
 * The reference as a string that parseReference turns back into the same ImageReference.
 * Registry references are written without a transport prefix, the way users type them.
 */
export function formatReference(ref: ImageReference): string {
  const image = formatImageName(ref);
  return ref.transport === 'registry' ? image : `${ref.transport}:${image}`;
}

/** The `transport:` prefix skopeo expects (`docker://` for registries). */
export function formatSkopeoReference(ref: ImageReference): string {
  return ref.transport === 'registry' ? `docker://${formatImageName(ref)}` : formatReference(ref);
}

/** True when `a` and `b` name the same repository (tags and digests aside). */
export function sameRepository(a: ImageReference, b: ImageReference): boolean {
  return a.transport === b.transport && a.name === b.name;
}
