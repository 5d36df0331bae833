/**
 * Writes small, real OCI image layouts for tests: real tar layers (gzip, zstd or none),
 * a real config and manifest, so the puller is exercised end to end on files it could meet.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface LayerSpec {
  files: Record<string, string | Buffer>;
  compression: Compression;
}

export interface BuiltLayer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
  tar: Buffer;
  blob: Buffer;
}

export interface BuiltImage {
  manifestDigest: string;
  manifestSize: number;
  configDigest: string;
  layers: BuiltLayer[];
}

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function compress(tar: Buffer, compression: Compression): { blob: Buffer; mediaType: string } {
  if (compression === 'gzip') return { blob: gzipSync(tar), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' };
  if (compression === 'zstd') return { blob: execFileSync('zstd', ['-c', '-q'], { input: tar }), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' };
  return { blob: tar, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
}

export function writeBlob(dir: string, bytes: Buffer | string): string {
  const digest = sha(bytes);
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return digest;
}

export interface ImageSpec {
  layers: LayerSpec[];
  architecture?: string;
  labels?: Record<string, string>;
  /** Replace a diff-id in the config (a config that disagrees with its layers). */
  diffIdOverride?: { index: number; diffId: string };
}

/** Write the blobs of one image into `dir` (no index entry). */
export async function writeImage(dir: string, spec: ImageSpec): Promise<BuiltImage> {
  const layers: BuiltLayer[] = [];
  for (const l of spec.layers) {
    const tar = await tarOf(l.files);
    const { blob, mediaType } = compress(tar, l.compression);
    layers.push({ digest: writeBlob(dir, blob), diffId: sha(tar), size: blob.length, mediaType, tar, blob });
  }
  const diffIds = layers.map((l) => l.diffId);
  if (spec.diffIdOverride) diffIds[spec.diffIdOverride.index] = spec.diffIdOverride.diffId;
  const config = JSON.stringify({
    architecture: spec.architecture ?? 'amd64',
    os: 'linux',
    created: '2025-06-01T12:00:00Z',
    config: { Labels: spec.labels ?? { 'org.opencontainers.image.version': '1.0' } },
    rootfs: { type: 'layers', diff_ids: diffIds },
  });
  const configDigest = writeBlob(dir, config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: Buffer.byteLength(config) },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  });
  return { manifestDigest: writeBlob(dir, manifest), manifestSize: Buffer.byteLength(manifest), configDigest, layers };
}

export function writeIndex(dir: string, entries: Array<Record<string, unknown>>): void {
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: entries }));
}

/** A layout at `dir` holding one image tagged `tag`. */
export async function buildLayout(dir: string, spec: ImageSpec, tag = 'latest'): Promise<BuiltImage> {
  const image = await writeImage(dir, spec);
  writeIndex(dir, [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: image.manifestDigest,
      size: image.manifestSize,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    },
  ]);
  return image;
}

export function randomContent(bytes: number): Buffer {
  return randomBytes(bytes);
}

export function blobFile(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice(7));
}
