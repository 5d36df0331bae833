/**
 * OCI layouts derived from the fixture images: fixture:v1 plus one layer of the test's own,
 * every digest right. The fixture's blobs are linked, not copied.
 */
import { copyFileSync, linkSync, mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ociLayoutDir } from '../../../fixtures/paths.js';
import { writeBlob, writeIndex } from './layout-builder.js';

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/** Writes the layout at `dir`, tagged `tag`: fixture:v1 and `tar` (gzipped) on top. Returns the new layer's digest. */
export function writeFixtureWithLayer(dir: string, tag: string, tar: Buffer, createdBy: string): string {
  const blob = (digest: string): string => join(ociLayoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const index = JSON.parse(readFileSync(join(ociLayoutDir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const v1 = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'v1')!;
  const manifest = JSON.parse(readFileSync(blob(v1.digest), 'utf8')) as {
    config: { digest: string; size: number };
    layers: { mediaType: string; digest: string; size: number }[];
  };
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as {
    rootfs: { diff_ids: string[] };
    history?: unknown[];
  };
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const layer of manifest.layers) {
    const to = join(dir, 'blobs', 'sha256', layer.digest.slice('sha256:'.length));
    try {
      linkSync(blob(layer.digest), to);
    } catch {
      copyFileSync(blob(layer.digest), to);
    }
  }
  const layerBlob = gzipSync(tar);
  const layerDigest = writeBlob(dir, layerBlob);
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const newConfig = JSON.stringify({
    ...config,
    rootfs: { type: 'layers', diff_ids: [...config.rootfs.diff_ids, diffId] },
    history: [...(config.history ?? []), { created_by: createdBy }],
  });
  const newManifest = JSON.stringify({
    ...manifest,
    config: { ...manifest.config, digest: writeBlob(dir, newConfig), size: Buffer.byteLength(newConfig) },
    layers: [...manifest.layers, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layerBlob.length }],
  });
  writeIndex(dir, [
    {
      mediaType: MANIFEST_TYPE,
      digest: writeBlob(dir, newManifest),
      size: Buffer.byteLength(newManifest),
      annotations: { 'org.opencontainers.image.ref.name': tag },
    },
  ]);
  return layerDigest;
}
