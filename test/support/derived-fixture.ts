/**
 * An OCI layout holding fixture:v1 plus one more layer of `files` (paths relative to /,
 * whiteouts as `dir/.wh.name`), tagged `tag`: images that differ from v1 in one detail
 * (an install config, no kargs.d) without building fixtures. v1's blobs are hard-linked.
 */
import { copyFileSync, linkSync, mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ociLayoutDir } from '../../fixtures/paths.js';
import { tarOf, writeBlob, writeIndex } from '../privileged/oci/layout-builder.js';

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export async function deriveFixtureV1(dir: string, tag: string, files: Record<string, string | Buffer>, why: string): Promise<string> {
  const blob = (digest: string): string => join(ociLayoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const index = JSON.parse(readFileSync(join(ociLayoutDir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const v1 = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'v1')!;
  const manifest = JSON.parse(readFileSync(blob(v1.digest), 'utf8')) as {
    config: { digest: string; size: number };
    layers: { mediaType: string; digest: string; size: number }[];
  };
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as { rootfs: { diff_ids: string[] }; history?: unknown[] };
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const layer of manifest.layers) {
    const to = join(dir, 'blobs', 'sha256', layer.digest.slice('sha256:'.length));
    try {
      linkSync(blob(layer.digest), to);
    } catch {
      copyFileSync(blob(layer.digest), to);
    }
  }
  const tar = await tarOf(files);
  const layerBlob = gzipSync(tar);
  const layerDigest = writeBlob(dir, layerBlob);
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const newConfig = JSON.stringify({
    ...config,
    rootfs: { type: 'layers', diff_ids: [...config.rootfs.diff_ids, diffId] },
    history: [...(config.history ?? []), { created_by: `test: ${why}` }],
  });
  const newManifest = JSON.stringify({
    ...manifest,
    config: { ...manifest.config, digest: writeBlob(dir, newConfig), size: Buffer.byteLength(newConfig) },
    layers: [...manifest.layers, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layerBlob.length }],
  });
  writeIndex(dir, [
    { mediaType: MANIFEST_TYPE, digest: writeBlob(dir, newManifest), size: Buffer.byteLength(newManifest), annotations: { 'org.opencontainers.image.ref.name': tag } },
  ]);
  return `oci:${dir}:${tag}`;
}

/** The fixture's own kargs.d file (console=ttyS0,115200), which fixture:v1 brings. */
export const FIXTURE_KARGS_D = 'usr/lib/bootc/kargs.d/10-fixture-console.toml';
/** A layer entry that removes it: the image then brings no console argument of its own. */
export const WITHOUT_FIXTURE_CONSOLE = { 'usr/lib/bootc/kargs.d/.wh.10-fixture-console.toml': '' };
