/**
 * Pulling the fixture OS images through every local transport: the OCI layout, an
 * oci-archive, a docker-archive made by skopeo, and podman's storage. Skipped, with the
 * reason printed, when the fixtures are not built.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError, unwrapContext } from '../../../src/core/errors.js';
import { runImageInspect } from '../../../src/cli/image.js';
import { fetchManifestAndConfig, pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import type { Platform } from '../../../src/oci/types.js';
import {
  containersStorageRef,
  fixturesHint,
  fixturesIndexPath,
  ociArchiveRef,
  ociLayoutDir,
  ociLayoutRef,
  readFixturesIndex,
} from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skipReason = needsFile(fixturesIndexPath, fixturesHint) ?? needsCommands('skopeo', 'podman');

/** The architecture the fixtures were built for, read from v1's config (normally amd64). */
function fixturePlatform(): Platform {
  const blob = (digest: string): string => readFileSync(join(ociLayoutDir, 'blobs', 'sha256', digest.slice(7)), 'utf8');
  const manifest = JSON.parse(blob(readFixturesIndex().tags.v1.manifestDigest)) as { config: { digest: string } };
  const config = JSON.parse(blob(manifest.config.digest)) as { architecture: string; os: string };
  return { os: config.os, architecture: config.architecture };
}

function message(err: unknown): string {
  const root = unwrapContext(err).root;
  return root instanceof Error ? root.message : String(root);
}

describe.skipIf(explainSkip('privileged', skipReason))('pull the fixture images through the local transports', () => {
  let work: string;
  let platform: Platform;
  const scratch = suiteDir('fixture-pull', { under: DISK_TMP });
  beforeAll(() => {
    work = scratch.path;
    platform = fixturePlatform();
  });

  it('the fixtures are built for this machine (amd64), so pulls without --platform work', async () => {
    expect(platform).toEqual({ os: 'linux', architecture: 'amd64' });
    const pulled = await pullImage(parseReference(ociLayoutRef('v1')), { cacheDir: join(work, 'cache-host') });
    expect(pulled.config.architecture).toBe('amd64');
  });

  it('oci: and oci-archive: give the manifest digest the fixture build recorded, sharing one cache', async () => {
    const cacheDir = join(work, 'cache-layout');
    const expected = readFixturesIndex().tags.v1.manifestDigest;
    const fromLayout = await pullImage(parseReference(ociLayoutRef('v1')), { cacheDir, platform });
    expect(fromLayout.manifestDigest).toBe(expected);
    expect(fromLayout.bytesFetched).toBeGreaterThan(10_000_000);
    const fromArchive = await pullImage(parseReference(ociArchiveRef('v1')), { cacheDir, platform });
    expect(fromArchive.manifestDigest).toBe(expected);
    expect(fromArchive.bytesFetched).toBe(0);
    // v2 shares v1's layers: only its own new layer (and config) travel.
    const v2 = await pullImage(parseReference(ociLayoutRef('v2')), { cacheDir, platform });
    const newLayers = v2.layers.filter((l) => !fromLayout.layers.some((o) => o.descriptor.digest === l.descriptor.digest));
    expect(newLayers.length).toBeGreaterThan(0);
    expect(v2.bytesFetched).toBeLessThan(newLayers.reduce((n, l) => n + l.descriptor.size, 0) + 100_000);
  });

  it('docker-archive: made by skopeo pulls with the same layers and diff-ids', async () => {
    const archive = join(work, 'v1-docker.tar');
    execFileSync('skopeo', ['copy', '-q', ociLayoutRef('v1'), `docker-archive:${archive}`]);
    const pulled = await pullImage(parseReference(`docker-archive:${archive}`), { cacheDir: join(work, 'cache-docker'), platform });
    const reference = await fetchManifestAndConfig(parseReference(ociLayoutRef('v1')), { platform });
    expect(pulled.manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(pulled.layers.map((l) => l.diffId)).toEqual(reference.layers.map((l) => l.diffId));
    expect(pulled.config.labels).toEqual(reference.config.labels);
  });

  it.skipIf(explainSkip('privileged', needsRoot()))('containers-storage: exports through podman and cleans its temp files', async () => {
    const before = readdirSync('/var/tmp').filter((n) => n.startsWith('bootc-storage-export-'));
    const reference = await fetchManifestAndConfig(parseReference(ociLayoutRef('v1')), { platform });
    const pulled = await pullImage(parseReference(containersStorageRef('v1')), { cacheDir: join(work, 'cache-storage'), platform });
    expect(pulled.layers.map((l) => l.diffId)).toEqual(reference.layers.map((l) => l.diffId));
    expect(readdirSync('/var/tmp').filter((n) => n.startsWith('bootc-storage-export-'))).toEqual(before);
  });

  it.skipIf(explainSkip('privileged', needsRoot()))('containers-storage: an unknown image is a user error', async () => {
    let err: unknown;
    await pullImage(parseReference('containers-storage:localhost/fixture:no-such-tag'), { cacheDir: join(work, 'cache-none'), platform }).catch((e: unknown) => (err = e));
    expect(unwrapContext(err).root).toBeInstanceOf(UserError);
    expect(message(err)).toBe('image localhost/fixture:no-such-tag is not in the local container storage');
  });

  it('the arm64 fixture is refused on another architecture, naming what it has', async () => {
    const cacheDir = join(work, 'cache-arch');
    const wanted = { os: 'linux', architecture: platform.architecture === 'arm64' ? 'amd64' : platform.architecture };
    let err: unknown;
    await pullImage(parseReference(ociLayoutRef('arm64')), { cacheDir, platform: wanted }).catch((e: unknown) => (err = e));
    expect(message(err)).toBe(`image ${ociLayoutRef('arm64')} has no linux/${wanted.architecture} variant; it has: linux/arm64`);
    expect(existsSync(join(cacheDir, 'index.json'))).toBe(false);
  });

  it('bootc image inspect prints digests, architecture, version and layers without pulling layers', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    await runImageInspect({ image: ociLayoutRef('v2'), platform: `${platform.os}/${platform.architecture}`, format: 'humanreadable' }, out);
    const meta = await fetchManifestAndConfig(parseReference(ociLayoutRef('v2')), { platform });
    expect(text).toContain(`Manifest digest: ${readFixturesIndex().tags.v2.manifestDigest}\n`);
    expect(text).toContain(`Config digest: ${meta.configDigest}\n`);
    expect(text).toContain(`Architecture: linux/${platform.architecture}\n`);
    expect(text).toMatch(/^Version: \S+$/m);
    for (const l of meta.layers) expect(text).toContain(`diff-id ${l.diffId}`);

    let json = '';
    const jsonOut = new PassThrough();
    jsonOut.on('data', (d: Buffer) => (json += d.toString()));
    await runImageInspect({ image: ociLayoutRef('v2'), platform: `${platform.os}/${platform.architecture}`, format: 'json' }, jsonOut);
    const doc = JSON.parse(json);
    expect(doc).toMatchObject({ manifestDigest: readFixturesIndex().tags.v2.manifestDigest, architecture: platform.architecture });
    expect(doc.layers).toHaveLength(meta.layers.length);
    expect(doc.layers[0]).toEqual({
      digest: meta.layers[0]!.descriptor.digest,
      mediaType: meta.layers[0]!.descriptor.mediaType,
      size: meta.layers[0]!.descriptor.size,
      diffId: meta.layers[0]!.diffId,
    });
  });
});
