/**
 * The store on the real fixture images (Debian 12, ~20k entries): import v1 then v2 from
 * the fixture OCI layout (layers gunzipped here with node:zlib; the real puller lives in
 * src/oci), check out both as deployments, and account for disk space, fsck and gc.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createReadStream, readFileSync, realpathSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { importLayer, loadLayerIndex, type LayerImportResult } from '../../../src/store/layer-import.js';
import { writeImageTree, type LayerInput } from '../../../src/store/tree.js';
import { checkoutTree } from '../../../src/store/checkout.js';
import { fsckStore } from '../../../src/store/fsck.js';
import { gcStore } from '../../../src/store/gc.js';
import { objectPath, storeLayout } from '../../../src/store/layout.js';
import { listObjects } from '../../../src/store/store-contents.js';
import type { TreeIndex } from '../../../src/store/index-format.js';
import { fixturesHint, ociLayoutDir } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip(
  'privileged',
  needsRoot() ?? needsCommands('setfattr', 'getfattr') ?? needsFile(join(ociLayoutDir, 'index.json'), fixturesHint),
);

// Pin the build that `current` names now, so a fixture rebuild during the run cannot pull
// blobs away from under us.
const layoutDir = skip ? ociLayoutDir : realpathSync(ociLayoutDir);

interface FixtureImage {
  manifestDigest: string;
  layers: Array<{ diffId: string; blob: string }>;
}

function blobPath(digest: string): string {
  const [algo, hex] = digest.split(':') as [string, string];
  return join(layoutDir, 'blobs', algo, hex);
}

function fixtureImage(tag: string): FixtureImage {
  const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!desc) throw new Error(`fixture layout has no tag ${tag}`);
  const manifest = JSON.parse(readFileSync(blobPath(desc.digest), 'utf8')) as {
    config: { digest: string };
    layers: Array<{ digest: string }>;
  };
  const config = JSON.parse(readFileSync(blobPath(manifest.config.digest), 'utf8')) as { rootfs: { diff_ids: string[] } };
  return {
    manifestDigest: desc.digest,
    layers: manifest.layers.map((l, i) => ({ diffId: config.rootfs.diff_ids[i] as string, blob: blobPath(l.digest) })),
  };
}

async function importImage(root: string, image: FixtureImage): Promise<{ results: LayerImportResult[]; tree: TreeIndex }> {
  const results: LayerImportResult[] = [];
  for (const l of image.layers) {
    results.push(await importLayer(root, l.diffId, createReadStream(l.blob).pipe(createGunzip())));
  }
  const tree = await writeImageTree(root, image.manifestDigest, image.layers.map((l) => l.diffId));
  return { results, tree };
}

/** Deploy as src/deploy will: hardlinked image, /etc copied, pristine /etc at /usr/etc, /var a mount point. */
async function deploy(root: string, tree: TreeIndex, id: string): Promise<string> {
  const dest = join(root, 'bootc', 'deploy', 'default', id);
  await mkdir(join(root, 'bootc', 'deploy', 'default'), { recursive: true });
  await checkoutTree(root, tree, dest, {
    rules: [
      { path: 'etc', destination: join(dest, 'usr', 'etc') },
      { path: 'var', method: 'mountpoint' },
    ],
  });
  await checkoutTree(root, tree, join(dest, 'etc'), { subtree: 'etc', method: 'copy' });
  return dest;
}

/** Disk space under `dir`: st_blocks of every inode, each counted once. */
async function diskUsage(dir: string): Promise<number> {
  const seen = new Set<string>();
  let bytes = 0;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p, { bigint: true });
    const key = `${st.dev}:${st.ino}`;
    if (!seen.has(key)) {
      seen.add(key);
      bytes += Number(st.blocks) * 512;
    }
    if (st.isDirectory()) for (const n of await readdir(p)) await walk(join(p, n));
  };
  await walk(dir);
  return bytes;
}

async function objectIds(root: string): Promise<Set<string>> {
  return new Set((await listObjects(storeLayout(root))).objects.map((o) => o.id));
}

function treeObjects(tree: TreeIndex): Set<string> {
  return new Set(tree.entries.flatMap((e) => (e.kind === 'file' ? [e.object] : [])));
}

describe.skipIf(skip)('store on the fixture images', { timeout: 600_000 }, () => {
  let root: string;
  let v1: FixtureImage;
  let v2: FixtureImage;
  let tree1: TreeIndex;
  let tree2: TreeIndex;
  let objectsAfterV1: Set<string>;
  let v2Results: LayerImportResult[];
  let usageV1 = 0;
  let usageBoth = 0;

  const scratch = suiteDir('store-fixtures', { under: DISK_TMP });
  beforeAll(async () => {
    root = scratch.path;
    v1 = fixtureImage('v1');
    v2 = fixtureImage('v2');
    tree1 = (await importImage(root, v1)).tree;
    objectsAfterV1 = await objectIds(root);
    await deploy(root, tree1, 'd1');
    usageV1 = await diskUsage(root);
    const imported2 = await importImage(root, v2);
    tree2 = imported2.tree;
    v2Results = imported2.results;
    await deploy(root, tree2, 'd2');
    usageBoth = await diskUsage(root);
  }, 900_000);

  it('importing v2 after v1 reuses v1 layers and writes only the new layer objects', async () => {
    const shared = v1.layers.map((l) => l.diffId);
    expect(v2Results.slice(0, shared.length).every((r) => r.cached)).toBe(true);
    const last = v2Results[v2Results.length - 1] as LayerImportResult;
    expect(last.cached).toBe(false);
    const newObjects = [...(await objectIds(root))].filter((id) => !objectsAfterV1.has(id));
    expect(newObjects.length).toBe(last.stats.objectsWritten);
    expect(newObjects.length).toBeGreaterThan(0);
    const newLayer = await loadLayerIndex(root, last.diffId);
    const newLayerObjects = new Set(newLayer.entries.flatMap((e) => (e.kind === 'file' ? [e.object] : [])));
    for (const id of newObjects) expect(newLayerObjects.has(id)).toBe(true);
  });

  it('the deployments hold each image as built', async () => {
    const d1 = join(root, 'bootc/deploy/default/d1');
    const d2 = join(root, 'bootc/deploy/default/d2');
    expect((await readFile(join(d1, 'usr/lib/fixture-release'), 'utf8')).trim()).toBe('1');
    expect((await readFile(join(d2, 'usr/lib/fixture-release'), 'utf8')).trim()).toBe('2');
    expect((await readFile(join(d2, 'etc/fixture/image.conf'), 'utf8')).trim()).toBe('image=2');
    expect((await readFile(join(d2, 'usr/etc/fixture/image.conf'), 'utf8')).trim()).toBe('image=2');
    await expect(lstat(join(d1, 'usr/share/fixture/added-in-v2'))).rejects.toThrow();
    expect((await lstat(join(d2, 'usr/share/fixture/added-in-v2'))).isFile()).toBe(true);
    expect((await lstat(join(d1, 'home'))).isSymbolicLink()).toBe(true);
    const kernels = await readdir(join(d1, 'usr/lib/modules'));
    expect(kernels).toHaveLength(1);
    const vmlinuz = await lstat(join(d1, 'usr/lib/modules', kernels[0] as string, 'vmlinuz'));
    expect(vmlinuz.ino).toBe((await lstat(join(d2, 'usr/lib/modules', kernels[0] as string, 'vmlinuz'))).ino);
  });

  it('both deployments and the store take at most 1.05x the space of v1 alone', () => {
    const ratio = usageBoth / usageV1;
    process.stderr.write(`disk usage: v1 ${usageV1} B, v1+v2 ${usageBoth} B, ratio ${ratio.toFixed(4)}\n`);
    expect(ratio).toBeLessThanOrEqual(1.05);
  });

  it('the nokernel image: its whiteouts delete the kernel from the merged tree', async () => {
    const nokernel = fixtureImage('nokernel');
    const { results, tree } = await importImage(root, nokernel);
    expect(results.slice(0, 3).every((r) => r.cached)).toBe(true);
    expect(tree.entries.some((e) => e.path.endsWith('/vmlinuz'))).toBe(false);
    expect(tree1.entries.some((e) => e.path.endsWith('/vmlinuz'))).toBe(true);
    await rm(join(root, 'bootc/images', nokernel.manifestDigest), { recursive: true });
  });

  it('fsck passes, then finds a corrupted object', async () => {
    const clean = await fsckStore(root);
    expect(clean.ok).toBe(true);
    expect(clean.objectsChecked).toBe((await objectIds(root)).size);
    const victim = tree2.entries.find((e) => e.kind === 'file' && e.path === 'usr/lib/fixture-release');
    const path = objectPath(storeLayout(root), victim?.kind === 'file' ? victim.object : '');
    await writeFile(path, '999\n');
    const bad = await fsckStore(root);
    expect(bad.ok).toBe(false);
    expect(bad.corrupt.map((c) => c.path)).toEqual([path]);
    await writeFile(path, '2\n');
    expect((await fsckStore(root)).ok).toBe(true);
  });

  it('gc keeps everything a kept image needs and removes what only a dropped one used', async () => {
    const before = await objectIds(root);
    // Drop v1: every v1 layer is also a v2 layer, so no object is v1-only; only its tree goes.
    const dropV1 = await gcStore(root, [v2.manifestDigest]);
    expect(dropV1.imagesRemoved).toEqual([v1.manifestDigest]);
    expect(dropV1.layersRemoved.sort()).toEqual([fixtureImage('nokernel').layers[3]?.diffId].sort());
    const afterV1 = await objectIds(root);
    for (const id of treeObjects(tree2)) expect(afterV1.has(id)).toBe(true);
    expect((await fsckStore(root)).missing).toEqual([]);

    // v1's tree comes back from the cached layers without importing anything, then drop v2:
    // exactly the objects of v2's own layer that v1 does not use go.
    const layers1: LayerInput[] = [];
    for (const l of v1.layers) layers1.push({ diffId: l.diffId, entries: (await loadLayerIndex(root, l.diffId)).entries });
    await writeImageTree(root, v1.manifestDigest, v1.layers.map((l) => l.diffId));
    const v1Needs = new Set<string>();
    for (const l of layers1) for (const e of l.entries) if (e.kind === 'file') v1Needs.add(e.object);
    const expectedGone = [...afterV1].filter((id) => !v1Needs.has(id)).sort();
    expect(expectedGone.length).toBeGreaterThan(0);
    const dropV2 = await gcStore(root, [v1.manifestDigest]);
    expect(dropV2.objectsRemoved).toBe(expectedGone.length);
    const afterV2 = await objectIds(root);
    for (const id of expectedGone) expect(afterV2.has(id)).toBe(false);
    for (const id of v1Needs) expect(afterV2.has(id)).toBe(true);
    expect(before.size).toBeGreaterThan(afterV2.size);
    expect((await fsckStore(root)).ok).toBe(true);
  });
});
