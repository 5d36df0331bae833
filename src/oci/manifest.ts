/**
 * Manifests, image indexes and image configs: media types, validation, sanity limits and
 * platform selection. Everything here is pure: it takes bytes or parsed documents and
 * returns values or a UserError that names the image; transports and the puller do the I/O.
 */
import { UserError } from '../core/errors.js';
import {
  FieldError,
  optional,
  readArray,
  readDigest,
  readNonEmptyString,
  readObject,
  readSize,
  readString,
  readStringMap,
  type FieldPath,
} from './json-fields.js';
import type { Descriptor, Platform } from './types.js';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
} as const;

/** What registries are asked for, best first (an Accept header's worth). */
export const ACCEPTED_MANIFEST_TYPES: readonly string[] = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
];

const SCHEMA1_TYPE = 'application/vnd.docker.distribution.manifest.v1+json';
const SCHEMA1_TYPES = new Set([SCHEMA1_TYPE, 'application/vnd.docker.distribution.manifest.v1+prettyjws']);

/**
 * containers/image refuses manifests above 4 MiB; a real one is a few KiB, so anything
 * bigger is a broken or hostile registry and is not worth buffering.
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** The same bound containers/image applies to image configs. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** Overlay-based runtimes stop at 128 layers (ostree-ext chunking aims at half of it). */
export const MAX_LAYERS = 128;

export type LayerCompression = 'gzip' | 'zstd' | 'none';

const LAYER_COMPRESSION: Readonly<Record<string, LayerCompression>> = {
  [MediaType.ociLayer]: 'none',
  [MediaType.ociLayerGzip]: 'gzip',
  [MediaType.ociLayerZstd]: 'zstd',
  [MediaType.dockerLayer]: 'none',
  [MediaType.dockerLayerGzip]: 'gzip',
  [MediaType.dockerLayerZstd]: 'zstd',
  // Same bytes, only a hint for registries not to mirror them.
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
};

/** How a layer is compressed, or a UserError for a layer type we cannot unpack. */
export function layerCompression(mediaType: string, imageName: string): LayerCompression {
  const compression = LAYER_COMPRESSION[mediaType];
  if (compression === undefined) {
    throw new UserError(`image ${imageName} has a layer of unsupported media type "${mediaType}"`, {
      hint: 'layers must be tar, tar+gzip or tar+zstd (OCI or Docker media types); rebuild or re-push the image with podman or buildah',
    });
  }
  return compression;
}

function readPlatform(value: unknown, path: FieldPath): Platform {
  const p = readObject(value, path);
  const platform: Platform = {
    architecture: readNonEmptyString(p['architecture'], [...path, 'architecture']),
    os: readNonEmptyString(p['os'], [...path, 'os']),
  };
  const variant = optional(p['variant'], [...path, 'variant'], readString);
  if (variant !== undefined) platform.variant = variant;
  const osVersion = optional(p['os.version'], [...path, 'os.version'], readString);
  if (osVersion !== undefined) platform['os.version'] = osVersion;
  const osFeatures = optional(p['os.features'], [...path, 'os.features'], (v, at) => readArray(v, at, readString));
  if (osFeatures !== undefined) platform['os.features'] = osFeatures;
  return platform;
}

function readDescriptor(value: unknown, path: FieldPath): Descriptor {
  const d = readObject(value, path);
  const descriptor: Descriptor = {
    mediaType: readNonEmptyString(d['mediaType'], [...path, 'mediaType']),
    digest: readDigest(d['digest'], [...path, 'digest']),
    size: readSize(d['size'], [...path, 'size']),
  };
  const annotations = optional(d['annotations'], [...path, 'annotations'], readStringMap);
  if (annotations !== undefined) descriptor.annotations = annotations;
  const platform = optional(d['platform'], [...path, 'platform'], readPlatform);
  if (platform !== undefined) descriptor.platform = platform;
  const urls = optional(d['urls'], [...path, 'urls'], (v, at) => readArray(v, at, readString));
  if (urls !== undefined) descriptor.urls = urls;
  return descriptor;
}

function readSchemaVersion2(doc: Record<string, unknown>): 2 {
  if (doc['schemaVersion'] !== 2) throw new FieldError(['schemaVersion'], `expected 2, got ${JSON.stringify(doc['schemaVersion']) ?? 'nothing'}`);
  return 2;
}

function readManifest(doc: Record<string, unknown>, mediaType: string): ImageManifest {
  readSchemaVersion2(doc);
  optional(doc['mediaType'], ['mediaType'], readString);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType,
    config: readDescriptor(doc['config'], ['config']),
    layers: readArray(doc['layers'], ['layers'], readDescriptor),
  };
  const annotations = optional(doc['annotations'], ['annotations'], readStringMap);
  if (annotations !== undefined) manifest.annotations = annotations;
  return manifest;
}

function readIndex(doc: Record<string, unknown>, mediaType: string): ImageIndex {
  readSchemaVersion2(doc);
  optional(doc['mediaType'], ['mediaType'], readString);
  const index: ImageIndex = { schemaVersion: 2, mediaType, manifests: readArray(doc['manifests'], ['manifests'], readDescriptor) };
  const annotations = optional(doc['annotations'], ['annotations'], readStringMap);
  if (annotations !== undefined) index.annotations = annotations;
  return index;
}

function readConfig(value: unknown): ImageConfig {
  const c = readObject(value, []);
  const architecture = readNonEmptyString(c['architecture'], ['architecture']);
  const os = readNonEmptyString(c['os'], ['os']);
  const variant = optional(c['variant'], ['variant'], readString);
  const created = optional(c['created'], ['created'], readString);
  // Docker writes `"config": null` and `"Labels": null` for an image without either.
  const runtime = c['config'] === null ? undefined : optional(c['config'], ['config'], readObject);
  const labels = runtime === undefined || runtime['Labels'] === null ? undefined : optional(runtime['Labels'], ['config', 'Labels'], readStringMap);
  const rootfs = readObject(c['rootfs'], ['rootfs']);
  if (rootfs['type'] !== 'layers') throw new FieldError(['rootfs', 'type'], `expected "layers", got ${JSON.stringify(rootfs['type']) ?? 'nothing'}`);
  const diffIds = readArray(rootfs['diff_ids'], ['rootfs', 'diff_ids'], readDigest);
  const config: ImageConfig = { architecture, os, labels: labels ?? {}, diffIds };
  if (variant !== undefined) config.variant = variant;
  if (created !== undefined) config.created = created;
  return config;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  labels: Record<string, string>;
  diffIds: string[];
}

export type ManifestDocument = { kind: 'manifest'; manifest: ImageManifest } | { kind: 'index'; index: ImageIndex };

function malformed(what: string, imageName: string, detail: string): UserError {
  return new UserError(`the ${what} of image ${imageName} is malformed: ${detail}`, {
    hint: 'the image was not written by a conforming tool, or the source is damaged; rebuild or re-push it',
  });
}

/** `read`, with a wrongly shaped field reported as a malformed `what` of the image. */
function readDocument<T>(what: string, imageName: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof FieldError) throw malformed(what, imageName, err.message);
    throw err;
  }
}

function parseJson(bytes: Uint8Array | string, what: string, imageName: string): unknown {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw malformed(what, imageName, `not JSON (${(err as Error).message})`);
  }
}

export function checkManifestSize(length: number, imageName: string): void {
  if (length > MAX_MANIFEST_BYTES) {
    throw new UserError(
      `the manifest of image ${imageName} is ${length} bytes, more than the ${MAX_MANIFEST_BYTES}-byte limit`,
      { hint: 'a real manifest is a few KiB; check that the reference points at an image and not at a blob' },
    );
  }
}

function unsupportedManifest(mediaType: string, imageName: string): UserError {
  if (SCHEMA1_TYPES.has(mediaType)) {
    return new UserError(`image ${imageName} uses the Docker schema 1 manifest format (${mediaType}), which is not supported`, {
      hint: 're-push the image with a current tool (`skopeo copy` or `podman push`) to convert it to schema 2 or OCI',
    });
  }
  return new UserError(`image ${imageName} has a manifest of unsupported media type "${mediaType}"`, {
    hint: 'expected an OCI image manifest or index, or a Docker schema 2 manifest or manifest list',
  });
}

/**
 * Parse a manifest or index. The media type comes from the document itself when it says,
 * else from what the transport reported (`servedType`, e.g. a registry's Content-Type).
 */
export function parseManifestDocument(bytes: Uint8Array | string, servedType: string | undefined, imageName: string): ManifestDocument {
  const length = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  checkManifestSize(length, imageName);
  const json = parseJson(bytes, 'manifest', imageName);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw malformed('manifest', imageName, 'not a JSON object');
  }
  const doc = json as Record<string, unknown>;
  if (doc['schemaVersion'] === 1) throw unsupportedManifest(SCHEMA1_TYPE, imageName);
  const declared = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : undefined;
  // OCI allows omitting mediaType; then the shape decides (manifests vs layers).
  const served = servedType !== undefined && servedType !== '' && servedType !== 'application/json' ? servedType.split(';')[0]!.trim() : undefined;
  const mediaType = declared ?? served ?? (Array.isArray(doc['manifests']) ? MediaType.ociIndex : MediaType.ociManifest);

  if (mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList) {
    return { kind: 'index', index: readDocument('image index', imageName, () => readIndex(doc, mediaType)) };
  }
  if (mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest) {
    const manifest = readDocument('manifest', imageName, () => readManifest(doc, mediaType));
    if (manifest.layers.length > MAX_LAYERS) {
      throw new UserError(`image ${imageName} has ${manifest.layers.length} layers, more than the limit of ${MAX_LAYERS}`, {
        hint: 'squash or rechunk the image to at most 128 layers',
      });
    }
    for (const layer of manifest.layers) layerCompression(layer.mediaType, imageName);
    return { kind: 'manifest', manifest };
  }
  throw unsupportedManifest(mediaType, imageName);
}

/** Parse an image config blob; checks its diff-ids against the manifest's layers. */
export function parseImageConfig(bytes: Uint8Array | string, manifest: ImageManifest, imageName: string): ImageConfig {
  const length = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (length > MAX_CONFIG_BYTES) {
    throw new UserError(`the config of image ${imageName} is ${length} bytes, more than the ${MAX_CONFIG_BYTES}-byte limit`, {
      hint: 'a real image config is a few KiB; the image is damaged or hostile',
    });
  }
  const json = parseJson(bytes, 'config', imageName);
  const config = readDocument('config', imageName, () => readConfig(json));
  if (config.diffIds.length !== manifest.layers.length) {
    throw malformed('config', imageName, `it lists ${config.diffIds.length} layer diff-ids but the manifest has ${manifest.layers.length} layers`);
  }
  return config;
}

// ---------------------------------------------------------------------------------------
// Platforms

/** Node's `process.arch` in the GOARCH spelling OCI uses. */
const OCI_ARCHITECTURES: Readonly<Record<string, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
  ppc: 'ppc',
};

/** The OCI platform of a machine described by Node's arch and endianness names. */
export function ociPlatformFor(nodeArch: string, endianness: 'LE' | 'BE' = 'LE'): Platform {
  let architecture: string;
  if (nodeArch === 'ppc64') architecture = endianness === 'LE' ? 'ppc64le' : 'ppc64';
  else architecture = OCI_ARCHITECTURES[nodeArch] ?? nodeArch;
  return { os: 'linux', architecture };
}

const PLATFORM_TEXT = /^([a-z0-9_]+)\/([a-z0-9_]+)(?:\/([a-z0-9_]+))?$/;

/** `--platform os/arch[/variant]`, as podman spells it. */
export function parsePlatform(text: string): Platform {
  const match = PLATFORM_TEXT.exec(text.trim());
  if (!match) {
    throw new UserError(`"${text}" is not a platform`, { hint: 'write --platform os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8' });
  }
  const platform: Platform = { os: match[1]!, architecture: match[2]! };
  if (match[3] !== undefined) platform.variant = match[3];
  return platform;
}

export function formatPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Variants implied when an image omits them (the OCI spec's "arm64 is v8" convention). */
function normalizedVariant(p: Pick<Platform, 'architecture' | 'variant'>): string | undefined {
  if (p.variant !== undefined && p.variant !== '') return p.variant;
  if (p.architecture === 'arm64') return 'v8';
  return undefined;
}

/** Does an image for `candidate` fit a machine that wants `wanted`? */
export function platformMatches(candidate: Pick<Platform, 'os' | 'architecture' | 'variant'>, wanted: Platform): boolean {
  if (candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return false;
  if (wanted.variant === undefined) return true;
  return normalizedVariant(candidate) === normalizedVariant(wanted);
}

function noVariant(imageName: string, wanted: Platform, available: string[]): UserError {
  const list = [...new Set(available)];
  return new UserError(
    `image ${imageName} has no ${formatPlatform(wanted)} variant; it has: ${list.length > 0 ? list.join(', ') : 'no platforms at all'}`,
    {
      hint:
        list.length > 0
          ? `use an image built for ${formatPlatform(wanted)}, or choose another platform with --platform (e.g. --platform ${list[0]})`
          : `use an image built for ${formatPlatform(wanted)}`,
    },
  );
}

/**
 * Choose the manifest for `wanted` in an index. Entries without a platform (attestations,
 * signatures) never match; among matches, an exact variant beats an implied one, then the
 * index order decides, as in containers/image.
 */
export function selectPlatformManifest(index: ImageIndex, wanted: Platform, imageName: string): Descriptor {
  const candidates = index.manifests.filter(
    (d) =>
      d.platform !== undefined &&
      (d.mediaType === MediaType.ociManifest || d.mediaType === MediaType.dockerManifest) &&
      platformMatches(d.platform, wanted),
  );
  if (candidates.length === 0) {
    const available = index.manifests
      .filter((d) => d.platform !== undefined && d.platform.os !== 'unknown')
      .map((d) => formatPlatform(d.platform!));
    throw noVariant(imageName, wanted, available);
  }
  const exact = candidates.find((d) => d.platform?.variant === wanted.variant);
  return exact ?? candidates[0]!;
}

/** A single-platform image: its config must say it runs on `wanted`. */
export function checkConfigPlatform(config: ImageConfig, wanted: Platform, imageName: string): void {
  if (!platformMatches(config, wanted)) {
    throw noVariant(imageName, wanted, [formatPlatform(config)]);
  }
}

/** `org.opencontainers.image.version`, else the legacy `version` label, as bootc status reads it. */
export function imageVersion(config: ImageConfig): string | undefined {
  return config.labels['org.opencontainers.image.version'] ?? config.labels['version'];
}
