/**
 * The puller and blob cache on real OCI layouts written by the test: verification,
 * resume, diff-ids, platforms, cancellation, and that the cache is a valid OCI layout.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ContextError, InterruptedError, UserError, unwrapContext } from '../../../src/core/errors.js';
import { Progress, type ProgressEvent } from '../../../src/core/progress.js';
import { BlobCache } from '../../../src/oci/blob-cache.js';
import { openLayer } from '../../../src/oci/layer.js';
import { cacheRefName, fetchManifestAndConfig, pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import { explainSkip, needsCommands } from '../../support/tier.js';
import { blobFile, buildLayout, randomContent, writeImage, writeIndex, type BuiltImage, type ImageSpec } from './layout-builder.js';
import { testDir } from '../../support/temp-tree.js';

const amd64 = { os: 'linux', architecture: 'amd64' };

/** Buffer.equals: vitest's deep equality walks megabytes byte by byte. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.equals(b);
}

function rootError(err: unknown): unknown {
  return unwrapContext(err).root;
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the pull to fail');
}

async function drain(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

describe.skipIf(explainSkip('privileged', needsCommands('zstd')))('pull from an OCI layout into the blob cache', () => {
  let work: string;
  let layout: string;
  let cacheDir: string;
  beforeEach(() => {
    work = testDir('pull');
    layout = join(work, 'layout');
    cacheDir = join(work, 'cache');
  });

  const threeLayers: ImageSpec = {
    layers: [
      { files: { 'usr/lib/os-release': 'ID=test\n', 'etc/a': 'a' }, compression: 'gzip' },
      { files: { 'usr/bin/tool': 'zstd layer' }, compression: 'zstd' },
      { files: { 'etc/plain': 'uncompressed' }, compression: 'none' },
    ],
  };

  it('pulls gzip, zstd and uncompressed layers; the cache is an OCI layout; a second pull fetches nothing', async () => {
    const built = await buildLayout(layout, threeLayers, 'v1');
    const ref = parseReference(`oci:${layout}:v1`);
    const events: ProgressEvent[] = [];
    const progress = new Progress([{ handle: (e) => events.push(e), close: async () => undefined }]);

    const pulled = await pullImage(ref, { cacheDir, platform: amd64, progress });
    expect(pulled.manifestDigest).toBe(built.manifestDigest);
    expect(pulled.configDigest).toBe(built.configDigest);
    expect(pulled.layers.map((l) => l.diffId)).toEqual(built.layers.map((l) => l.diffId));
    expect(pulled.bytesFetched).toBeGreaterThan(built.layers.reduce((n, l) => n + l.size, 0));

    const cache = await BlobCache.open(cacheDir);
    for (const [i, l] of pulled.layers.entries()) {
      expect(sameBytes(readFileSync(cache.blobPath(l.descriptor.digest)), built.layers[i]!.blob)).toBe(true);
      expect(sameBytes(await drain(openLayer(cache, l, l.diffId)), built.layers[i]!.tar)).toBe(true);
    }
    const index = JSON.parse(readFileSync(join(cacheDir, 'index.json'), 'utf8'));
    expect(index.manifests).toEqual([
      expect.objectContaining({ digest: built.manifestDigest, annotations: { 'org.opencontainers.image.ref.name': cacheRefName(ref) } }),
    ]);
    expect(readdirSync(join(cacheDir, 'blobs', 'sha256')).filter((n) => n.includes('.'))).toEqual([]);

    const last = events.filter((e) => e.type === 'ProgressBytes').at(-1);
    expect(last).toMatchObject({ task: 'pulling', bytes: last?.type === 'ProgressBytes' ? last.bytesTotal : -1, steps: 3, stepsTotal: 3, stepsCached: 0 });
    if (last?.type === 'ProgressBytes') {
      expect(last.subtasks.map((s) => s.id)).toEqual(built.layers.map((l) => l.digest.slice(7, 28)));
      expect(last.subtasks.every((s) => s.subtask === 'layer')).toBe(true);
    }

    events.length = 0;
    const again = await pullImage(ref, { cacheDir, platform: amd64, progress });
    expect(again.bytesFetched).toBe(0);
    const cachedEvent = events.find((e) => e.type === 'ProgressBytes');
    expect(cachedEvent).toMatchObject({ stepsCached: 3, bytesCached: built.layers.reduce((n, l) => n + l.size, 0) });
  });

  it.skipIf(explainSkip('privileged', needsCommands('skopeo')))('writes a cache that skopeo reads', async () => {
    const built = await buildLayout(layout, threeLayers, 'v1');
    const ref = parseReference(`oci:${layout}:v1`);
    await pullImage(ref, { cacheDir, platform: amd64 });
    const out = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${cacheDir}:${cacheRefName(ref)}`], { encoding: 'utf8' }));
    expect(out.Digest).toBe(built.manifestDigest);
    expect(out.Layers).toEqual(built.layers.map((l) => l.digest));
  });

  it('a corrupted blob is an error naming blob and image, and nothing is left under its name', async () => {
    const built = await buildLayout(layout, threeLayers, 'v1');
    const bad = built.layers[0]!;
    const bytes = readFileSync(blobFile(layout, bad.digest));
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(blobFile(layout, bad.digest), bytes);
    const err = rootError(await failure(pullImage(parseReference(`oci:${layout}:v1`), { cacheDir, platform: amd64 })));
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(new RegExp(`blob ${bad.digest} of image oci:${layout}:v1 does not match its digest`));
    expect(existsSync(join(cacheDir, 'blobs', 'sha256', bad.digest.slice(7)))).toBe(false);
    expect(existsSync(join(cacheDir, 'blobs', 'sha256', `${bad.digest.slice(7)}.partial`))).toBe(false);
    expect(existsSync(join(cacheDir, 'index.json'))).toBe(false);
  });

  it('a truncated blob is an error saying how much arrived, and leaves nothing behind', async () => {
    const built = await buildLayout(layout, threeLayers, 'v1');
    const bad = built.layers[1]!;
    truncateSync(blobFile(layout, bad.digest), 5);
    const err = rootError(await failure(pullImage(parseReference(`oci:${layout}:v1`), { cacheDir, platform: amd64 })));
    expect((err as Error).message).toContain(`blob ${bad.digest}`);
    expect((err as Error).message).toContain(`truncated: the source ended after 5 of ${bad.size} bytes`);
    expect(readdirSync(join(cacheDir, 'blobs', 'sha256')).some((n) => n.startsWith(bad.digest.slice(7)))).toBe(false);
  });

  it('resumes a partial left by an interrupted pull, reading only the rest', async () => {
    const built = await buildLayout(layout, { layers: [{ files: { big: randomContent(3 << 20) }, compression: 'none' }] }, 'v1');
    const layer = built.layers[0]!;
    const cache = await BlobCache.open(cacheDir);
    const half = Math.floor(layer.size / 2);
    writeFileSync(cache.partialPath(layer.digest), layer.blob.subarray(0, half));
    const pulled = await pullImage(parseReference(`oci:${layout}:v1`), { cacheDir, platform: amd64 });
    const configSize = readFileSync(blobFile(layout, built.configDigest)).length;
    expect(pulled.bytesFetched).toBe(layer.size - half + configSize);
    expect(sameBytes(readFileSync(cache.blobPath(layer.digest)), layer.blob)).toBe(true);
    expect(existsSync(cache.partialPath(layer.digest))).toBe(false);
  });

  it('a partial holding wrong bytes fails verification, is deleted, and the next pull succeeds', async () => {
    const built = await buildLayout(layout, { layers: [{ files: { f: randomContent(1 << 20) }, compression: 'gzip' }] }, 'v1');
    const layer = built.layers[0]!;
    const cache = await BlobCache.open(cacheDir);
    writeFileSync(cache.partialPath(layer.digest), randomContent(1000));
    const ref = parseReference(`oci:${layout}:v1`);
    expect((rootError(await failure(pullImage(ref, { cacheDir, platform: amd64 }))) as Error).message).toMatch(/does not match its digest/);
    expect(existsSync(cache.partialPath(layer.digest))).toBe(false);
    await pullImage(ref, { cacheDir, platform: amd64 });
    expect(sameBytes(readFileSync(cache.blobPath(layer.digest)), layer.blob)).toBe(true);
  });

  it('layersInPlace: layout and archive layers are read where they are, not copied; a changed blob is refused when read', async () => {
    const built = await buildLayout(layout, threeLayers, 'v1');
    const archive = join(work, 'os.tar');
    execFileSync('tar', ['-C', layout, '-cf', archive, '.']);
    for (const ref of [`oci:${layout}:v1`, `oci-archive:${archive}:v1`]) {
      const cacheOf = join(work, `cache-${ref.split(':')[0]}`);
      const pulled = await pullImage(parseReference(ref), { cacheDir: cacheOf, platform: amd64, layersInPlace: true });
      const cache = await BlobCache.open(cacheOf);
      for (const [i, l] of pulled.layers.entries()) {
        expect(l.inPlace?.path).toBe(ref.startsWith('oci:') ? blobFile(layout, l.descriptor.digest) : archive);
        expect(existsSync(cache.blobPath(l.descriptor.digest))).toBe(false);
        expect(sameBytes(await drain(openLayer(cache, l, l.diffId)), built.layers[i]!.tar)).toBe(true);
      }
      // The cache lacks the layers, so it does not record the image.
      expect(existsSync(join(cacheOf, 'index.json')) ? readFileSync(join(cacheOf, 'index.json'), 'utf8') : '').not.toContain(pulled.manifestDigest);
    }
    // The layout changes after the pull: its digest no longer matches, and the read fails.
    const pulled = await pullImage(parseReference(`oci:${layout}:v1`), { cacheDir: join(work, 'cache-2'), platform: amd64, layersInPlace: true });
    const plain = pulled.layers[2]!;
    const bytes = readFileSync(blobFile(layout, plain.descriptor.digest));
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    writeFileSync(blobFile(layout, plain.descriptor.digest), bytes);
    const err = (await failure(drain(openLayer(await BlobCache.open(join(work, 'cache-2')), plain, plain.diffId)))) as Error;
    expect(err.message).toMatch(new RegExp(`blob ${plain.descriptor.digest} of image .* does not match its digest: its content hashes to sha256:`));
  });

  it('a config whose diff-id disagrees with the layer fails the pull and openLayer', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    const built = await buildLayout(layout, { ...threeLayers, diffIdOverride: { index: 1, diffId: wrong } }, 'v1');
    const err = rootError(await failure(pullImage(parseReference(`oci:${layout}:v1`), { cacheDir, platform: amd64, verifyDiffIds: true })));
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(`layer ${built.layers[1]!.digest}`);
    expect((err as Error).message).toContain(`does not match its diff-id`);
    expect(existsSync(join(cacheDir, 'blobs', 'sha256', built.layers[1]!.digest.slice(7)))).toBe(false);

    // Without the pull-time check the blob lands, and openLayer is the one that objects.
    const pulled = await pullImage(parseReference(`oci:${layout}:v1`), { cacheDir, platform: amd64, verifyDiffIds: false });
    const layer = pulled.layers[1]!;
    const cache = await BlobCache.open(cacheDir);
    expect((await failure(drain(openLayer(cache, layer, layer.diffId))) as Error).message).toMatch(/does not match its diff-id/);
  });

  it('a gzip layer that is not gzip is named as undecompressable', async () => {
    const built = await buildLayout(layout, { layers: [{ files: { a: 'x' }, compression: 'none' }] }, 'v1');
    const cache = await BlobCache.open(cacheDir);
    await pullImage(parseReference(`oci:${layout}:v1`), { cacheDir, platform: amd64 });
    const desc = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: built.layers[0]!.digest, size: built.layers[0]!.size };
    expect((await failure(drain(openLayer(cache, { descriptor: desc }, built.layers[0]!.diffId))) as Error).message).toMatch(/cannot be decompressed/);
    const zdesc = { ...desc, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' };
    expect((await failure(drain(openLayer(cache, { descriptor: zdesc }, built.layers[0]!.diffId))) as Error).message).toMatch(/cannot be decompressed|zstd/);
  });

  it('picks the wanted platform from an index and names the others when none fits', async () => {
    const amd = await writeImage(layout, { layers: [{ files: { arch: 'amd64' }, compression: 'gzip' }] });
    const arm = await writeImage(layout, { architecture: 'arm64', layers: [{ files: { arch: 'arm64' }, compression: 'gzip' }] });
    const entry = (img: BuiltImage, architecture: string) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: img.manifestDigest,
      size: img.manifestSize,
      platform: { os: 'linux', architecture },
    });
    const indexJson = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry(amd, 'amd64'), entry(arm, 'arm64')] });
    const { writeBlob } = await import('./layout-builder.js');
    const indexDigest = writeBlob(layout, indexJson);
    writeIndex(layout, [
      { mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: Buffer.byteLength(indexJson), annotations: { 'org.opencontainers.image.ref.name': 'multi' } },
    ]);
    const ref = parseReference(`oci:${layout}:multi`);
    expect((await fetchManifestAndConfig(ref, { platform: { os: 'linux', architecture: 'arm64' } })).manifestDigest).toBe(arm.manifestDigest);
    const pulled = await pullImage(ref, { cacheDir, platform: amd64 });
    expect(pulled.manifestDigest).toBe(amd.manifestDigest);
    const err = rootError(await failure(fetchManifestAndConfig(ref, { platform: { os: 'linux', architecture: 's390x' } })));
    expect((err as Error).message).toBe(`image oci:${layout}:multi has no linux/s390x variant; it has: linux/amd64, linux/arm64`);
    expect((err as UserError).hint).toContain('--platform');
  });

  it('refuses a single-arch image of another architecture', async () => {
    await buildLayout(layout, { architecture: 'arm64', layers: [{ files: { a: 'b' }, compression: 'gzip' }] }, 'v1');
    const err = rootError(await failure(pullImage(parseReference(`oci:${layout}:v1`), { cacheDir, platform: amd64 })));
    expect((err as Error).message).toMatch(/has no linux\/amd64 variant; it has: linux\/arm64/);
    expect(existsSync(join(cacheDir, 'index.json'))).toBe(false);
  });

  it('names the tags present when the tag is missing', async () => {
    await buildLayout(layout, threeLayers, 'v1');
    const err = rootError(await failure(pullImage(parseReference(`oci:${layout}:v7`), { cacheDir, platform: amd64 })));
    expect((err as Error).message).toBe(`OCI layout ${layout} has no image named "v7"; it has: v1`);
  });

  it('Ctrl-C mid-blob leaves no blob under its final name, and the next pull completes it', async () => {
    const built = await buildLayout(layout, { layers: [{ files: { big: randomContent(8 << 20) }, compression: 'none' }] }, 'v1');
    const layer = built.layers[0]!;
    const controller = new AbortController();
    const progress = new Progress([
      {
        handle: (e) => {
          if (e.type === 'ProgressBytes' && e.bytes > 0 && e.bytes < e.bytesTotal) controller.abort('SIGINT');
        },
        close: async () => undefined,
      },
    ]);
    const ref = parseReference(`oci:${layout}:v1`);
    const err = await failure(pullImage(ref, { cacheDir, platform: amd64, progress, signal: controller.signal }));
    expect(err instanceof ContextError ? rootError(err) : err).toBeInstanceOf(InterruptedError);
    const cache = await BlobCache.open(cacheDir);
    expect(existsSync(cache.blobPath(layer.digest))).toBe(false);
    expect(existsSync(join(cacheDir, 'index.json'))).toBe(false);
    await pullImage(ref, { cacheDir, platform: amd64 });
    expect(sameBytes(readFileSync(cache.blobPath(layer.digest)), layer.blob)).toBe(true);
  });

  it('two pulls of the same image at once into one cache both succeed', async () => {
    const built = await buildLayout(layout, { layers: [{ files: { big: randomContent(4 << 20) }, compression: 'gzip' }] }, 'v1');
    const ref = parseReference(`oci:${layout}:v1`);
    const [a, b] = await Promise.all([pullImage(ref, { cacheDir, platform: amd64 }), pullImage(ref, { cacheDir, platform: amd64 })]);
    expect(a.manifestDigest).toBe(built.manifestDigest);
    expect(b.manifestDigest).toBe(built.manifestDigest);
    const cache = await BlobCache.open(cacheDir);
    expect(sameBytes(readFileSync(cache.blobPath(built.layers[0]!.digest)), built.layers[0]!.blob)).toBe(true);
  });
});
