import { describe, expect, it } from 'vitest';
import {
  MAX_LAYERS,
  MAX_MANIFEST_BYTES,
  MediaType,
  checkConfigPlatform,
  imageVersion,
  layerCompression,
  ociPlatformFor,
  parseImageConfig,
  parseManifestDocument,
  parsePlatform,
  selectPlatformManifest,
  type ImageIndex,
  type ImageManifest,
} from '../../../src/oci/manifest.js';
import { shortLayerId, sha256Hex } from '../../../src/oci/digest.js';
import type { Descriptor } from '../../../src/oci/types.js';
import { userErrorOf } from '../../support/user-error.js';

const IMAGE = 'quay.io/example/os:latest';
const d = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;

function layer(n: number, mediaType: string = MediaType.ociLayerGzip): Descriptor {
  return { mediaType, digest: d(n), size: 100 + n };
}

function manifestJson(layers: Descriptor[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: d(999), size: 10 },
    layers,
    ...extra,
  });
}

describe('parseManifestDocument', () => {
  it('parses an OCI manifest and keeps its layers in order', () => {
    const doc = parseManifestDocument(manifestJson([layer(1), layer(2)]), undefined, IMAGE);
    expect(doc.kind).toBe('manifest');
    if (doc.kind !== 'manifest') return;
    expect(doc.manifest.layers.map((l) => l.digest)).toEqual([d(1), d(2)]);
    expect(doc.manifest.mediaType).toBe(MediaType.ociManifest);
  });

  it.each([
    ['OCI index by its mediaType field', { mediaType: MediaType.ociIndex, manifests: [] }, undefined, 'index'],
    ['Docker manifest list', { mediaType: MediaType.dockerManifestList, manifests: [] }, undefined, 'index'],
    ['index without mediaType, by shape', { manifests: [] }, undefined, 'index'],
    ['index without mediaType, by served type', { manifests: [] }, MediaType.ociIndex, 'index'],
    [
      'Docker schema2 by served type',
      { config: { mediaType: MediaType.dockerConfig, digest: d(1), size: 1 }, layers: [] },
      `${MediaType.dockerManifest}; charset=utf-8`,
      'manifest',
    ],
  ] as const)('recognises %s', (_name, body, served, kind) => {
    const doc = parseManifestDocument(JSON.stringify({ schemaVersion: 2, ...body }), served, IMAGE);
    expect(doc.kind).toBe(kind);
  });

  it.each([
    ['schema 1 by version', JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [] }), undefined, /schema 1/],
    [
      'schema 1 signed',
      JSON.stringify({ schemaVersion: 2, manifests: [] }),
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
      /schema 1/,
    ],
    ['unknown type', JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-weird' }), undefined, /unsupported media type "application\/x-weird"/],
    ['not JSON', '{"schemaVersion": 2,', undefined, /manifest of image .* is malformed: not JSON/],
    ['array', '[]', undefined, /malformed: not a JSON object/],
    ['missing config', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, layers: [] }), undefined, /malformed: config/],
    [
      'bad digest',
      manifestJson([{ mediaType: MediaType.ociLayerGzip, digest: 'sha256:abc', size: 1 }]),
      undefined,
      /malformed: layers\.0\.digest/,
    ],
    ['negative size', manifestJson([{ ...layer(1), size: -1 }]), undefined, /malformed: layers\.0\.size/],
    ['unknown layer type', manifestJson([layer(1, 'application/vnd.example.layer+squashfs')]), undefined, /layer of unsupported media type/],
  ])('rejects %s with a UserError naming the image', (_name, text, served, message) => {
    const err = userErrorOf(() => parseManifestDocument(text, served, IMAGE));
    expect(err.message).toMatch(message);
    expect(err.message).toContain(IMAGE);
    expect(err.hint).toBeTruthy();
  });

  it.each([
    ['schemaVersion 3', JSON.stringify({ schemaVersion: 3, mediaType: MediaType.ociManifest, config: {}, layers: [] }), /malformed: schemaVersion: expected 2/],
    ['layers not an array', manifestJson([]).replace('"layers":[]', '"layers":{}'), /malformed: layers: expected an array, got an object/],
    ['a size that is not an integer', manifestJson([{ ...layer(1), size: 1.5 }]), /malformed: layers\.0\.size/],
    ['an empty layer media type', manifestJson([{ ...layer(1), mediaType: '' }]), /malformed: layers\.0\.mediaType: expected a non-empty string/],
    ['a null annotation value', manifestJson([], { annotations: { a: null } }), /malformed: annotations\.a: expected a string, got null/],
    ['a platform without os', manifestJson([{ ...layer(1), platform: { architecture: 'amd64' } as Descriptor['platform'] }]), /malformed: layers\.0\.platform\.os: missing/],
    ['a null variant', manifestJson([{ ...layer(1), platform: { os: 'linux', architecture: 'amd64', variant: null as unknown as string } }]), /layers\.0\.platform\.variant/],
    [
      'an index entry with a bad digest',
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociManifest, digest: 'md5:00', size: 1 }] }),
      /image index of image .* malformed: manifests\.0\.digest: expected a sha256 digest/,
    ],
  ])('rejects %s, naming the field', (_name, text, message) => {
    const err = userErrorOf(() => parseManifestDocument(text, undefined, IMAGE));
    expect(err.message).toMatch(message);
    expect(err.message).toContain(IMAGE);
  });

  it('keeps only the descriptor fields it knows', () => {
    const entry = { ...layer(1), urls: ['https://example.com/l'], annotations: { a: 'b' }, platform: { os: 'linux', architecture: 'arm64', variant: 'v8', extra: 1 }, extra: 'x' };
    const doc = parseManifestDocument(manifestJson([entry]), undefined, IMAGE);
    if (doc.kind !== 'manifest') throw new Error('expected a manifest');
    expect(doc.manifest.layers[0]).toEqual({
      mediaType: MediaType.ociLayerGzip,
      digest: d(1),
      size: 101,
      urls: ['https://example.com/l'],
      annotations: { a: 'b' },
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
  });

  it('keeps an annotation named __proto__ as an annotation', () => {
    const doc = parseManifestDocument(manifestJson([]).replace('"layers":[]', '"layers":[],"annotations":{"__proto__":"x"}'), undefined, IMAGE);
    if (doc.kind !== 'manifest') throw new Error('expected a manifest');
    expect(Object.getPrototypeOf(doc.manifest.annotations)).toBe(Object.prototype);
    expect(Object.keys(doc.manifest.annotations!)).toEqual(['__proto__']);
  });

  it('rejects a manifest above 4 MiB before parsing it', () => {
    const huge = manifestJson([], { annotations: { pad: 'x'.repeat(MAX_MANIFEST_BYTES) } });
    expect(userErrorOf(() => parseManifestDocument(huge, undefined, IMAGE)).message).toMatch(/more than the 4194304-byte limit/);
  });

  it('rejects more than 128 layers', () => {
    const layers = Array.from({ length: MAX_LAYERS + 1 }, (_, i) => layer(i + 1));
    expect(userErrorOf(() => parseManifestDocument(manifestJson(layers), undefined, IMAGE)).message).toMatch(/129 layers/);
    expect(parseManifestDocument(manifestJson(layers.slice(0, MAX_LAYERS)), undefined, IMAGE).kind).toBe('manifest');
  });
});

describe('layerCompression', () => {
  it.each([
    [MediaType.ociLayer, 'none'],
    [MediaType.ociLayerGzip, 'gzip'],
    [MediaType.ociLayerZstd, 'zstd'],
    [MediaType.dockerLayer, 'none'],
    [MediaType.dockerLayerGzip, 'gzip'],
    [MediaType.dockerLayerZstd, 'zstd'],
  ])('%s is %s', (type, compression) => {
    expect(layerCompression(type, IMAGE)).toBe(compression);
  });
  it('names an unknown layer type', () => {
    expect(userErrorOf(() => layerCompression('application/x-tar+lz4', IMAGE)).message).toContain('"application/x-tar+lz4"');
  });
});

describe('parseImageConfig', () => {
  const manifest = parseManifestDocument(manifestJson([layer(1), layer(2)]), undefined, IMAGE);
  if (manifest.kind !== 'manifest') throw new Error('fixture');
  const m: ImageManifest = manifest.manifest;
  const config = (extra: Record<string, unknown> = {}): string =>
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2025-01-02T03:04:05Z',
      config: { Labels: { 'org.opencontainers.image.version': '42.1', containers: 'bootc' } },
      rootfs: { type: 'layers', diff_ids: [d(11), d(12)] },
      ...extra,
    });

  it('reads architecture, labels, created and diff-ids', () => {
    const c = parseImageConfig(config(), m, IMAGE);
    expect(c).toMatchObject({ architecture: 'amd64', os: 'linux', created: '2025-01-02T03:04:05Z', diffIds: [d(11), d(12)] });
    expect(imageVersion(c)).toBe('42.1');
  });

  it('accepts null Labels and falls back to the legacy version label', () => {
    expect(parseImageConfig(config({ config: { Labels: null } }), m, IMAGE).labels).toEqual({});
    expect(imageVersion(parseImageConfig(config({ config: { Labels: { version: '7' } } }), m, IMAGE))).toBe('7');
  });

  it('rejects a config whose diff-ids do not match the layer count', () => {
    const err = userErrorOf(() => parseImageConfig(config({ rootfs: { type: 'layers', diff_ids: [d(11)] } }), m, IMAGE));
    expect(err.message).toMatch(/1 layer diff-ids but the manifest has 2 layers/);
  });

  it.each([
    ['a config that is an array', '[]', /malformed: document: expected an object, got an array/],
    ['a non-string label', config({ config: { Labels: { a: 1 } } }), /malformed: config\.Labels\.a: expected a string, got number/],
    ['an empty architecture', config({ architecture: '' }), /malformed: architecture: expected a non-empty string/],
    ['rootfs of another type', config({ rootfs: { type: 'snapshot', diff_ids: [d(11), d(12)] } }), /malformed: rootfs\.type: expected "layers"/],
    ['a bad diff-id', config({ rootfs: { type: 'layers', diff_ids: [d(11), 'sha256:xyz'] } }), /malformed: rootfs\.diff_ids\.1: expected a sha256 digest/],
  ])('rejects %s, naming the field', (_name, text, message) => {
    expect(userErrorOf(() => parseImageConfig(text, m, IMAGE)).message).toMatch(message);
  });

  it('accepts a null runtime config (Docker writes one for images without)', () => {
    expect(parseImageConfig(config({ config: null }), m, IMAGE).labels).toEqual({});
  });

  it('rejects a config without rootfs', () => {
    expect(userErrorOf(() => parseImageConfig(config({ rootfs: undefined }), m, IMAGE)).message).toMatch(/config of image .* malformed: rootfs/);
  });
});

describe('platforms', () => {
  it.each([
    ['x64', 'LE', 'amd64'],
    ['arm64', 'LE', 'arm64'],
    ['ia32', 'LE', '386'],
    ['ppc64', 'LE', 'ppc64le'],
    ['ppc64', 'BE', 'ppc64'],
    ['s390x', 'BE', 's390x'],
    ['riscv64', 'LE', 'riscv64'],
  ] as const)('node %s (%s) is OCI %s', (arch, endian, oci) => {
    expect(ociPlatformFor(arch, endian)).toEqual({ os: 'linux', architecture: oci });
  });

  it.each([
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
  ])('parses --platform %s', (text, platform) => {
    expect(parsePlatform(text)).toEqual(platform);
  });

  it.each(['amd64', 'linux/', 'linux/amd64/v8/x', 'Linux/AMD64'])('rejects --platform %s', (text) => {
    expect(userErrorOf(() => parsePlatform(text)).hint).toMatch(/--platform os\/arch/);
  });

  const entry = (n: number, architecture: string, variant?: string, os = 'linux'): Descriptor => ({
    mediaType: MediaType.ociManifest,
    digest: d(n),
    size: 500,
    platform: { os, architecture, ...(variant ? { variant } : {}) },
  });
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      entry(1, 'arm64'),
      entry(2, 'arm', 'v6'),
      entry(3, 'arm', 'v7'),
      entry(4, 's390x'),
      { mediaType: MediaType.ociManifest, digest: d(5), size: 100, platform: { os: 'unknown', architecture: 'unknown' } },
    ],
  };

  it.each([
    ['linux/arm64', 1],
    ['linux/arm64/v8', 1],
    ['linux/arm/v7', 3],
    ['linux/arm', 2],
    ['linux/s390x', 4],
  ])('selects %s', (wanted, n) => {
    expect(selectPlatformManifest(index, parsePlatform(wanted), IMAGE).digest).toBe(d(n));
  });

  it('names the wanted and the available platforms when none fits', () => {
    const err = userErrorOf(() => selectPlatformManifest(index, { os: 'linux', architecture: 'amd64' }, IMAGE));
    expect(err.message).toBe(`image ${IMAGE} has no linux/amd64 variant; it has: linux/arm64, linux/arm/v6, linux/arm/v7, linux/s390x`);
    expect(err.hint).toContain('--platform');
  });

  it('ignores entries without a platform', () => {
    const bare: ImageIndex = { ...index, manifests: [{ mediaType: MediaType.ociManifest, digest: d(9), size: 1 }] };
    expect(userErrorOf(() => selectPlatformManifest(bare, { os: 'linux', architecture: 'amd64' }, IMAGE)).message).toMatch(/no platforms at all/);
  });

  it('checks a single-arch image by its config', () => {
    const config = { architecture: 'arm64', os: 'linux', labels: {}, diffIds: [] };
    expect(() => checkConfigPlatform(config, { os: 'linux', architecture: 'arm64' }, IMAGE)).not.toThrow();
    expect(userErrorOf(() => checkConfigPlatform(config, { os: 'linux', architecture: 'amd64' }, IMAGE)).message).toBe(
      `image ${IMAGE} has no linux/amd64 variant; it has: linux/arm64`,
    );
  });
});

describe('digests', () => {
  it('takes the hex of a sha256 digest and the 21-character progress id', () => {
    expect(sha256Hex(d(255))).toHaveLength(64);
    expect(shortLayerId(`sha256:${'ab'.repeat(32)}`)).toBe('ab'.repeat(10) + 'a');
  });
  it.each(['sha512:' + 'a'.repeat(128), 'sha256:ABC', 'nonsense'])('refuses %s', (digest) => {
    expect(userErrorOf(() => sha256Hex(digest, 'blob x')).message).toMatch(/blob x/);
  });
});
