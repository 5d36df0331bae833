/**
 * bench/rebuild: an incremental `bootc image build-disk --store DIR` against a cold one.
 * The image is the generated many-layer image (fixtures/large-image.ts); the changed image is
 * the same with its last generated layer reseeded (`--variant`, a one-layer change). Each
 * run, in turns:
 *   - warm: build the image into a fresh store, then the changed image with that store;
 *     the second build is the rebuild;
 *   - cold: build the changed image with a fresh store.
 * Prints one JSON document: median seconds of the rebuild and of the cold build, their
 * ratio, per-step medians, peak RSS (whole, and our CLI's by step), and what the rebuild
 * wrote into the store: blobs and objects (the store keeps the imported object store in
 * <store>/bootc, so a rebuild imports the changed layer only). Asserts nothing.
 *
 *   npx tsx bench/rebuild.ts [--runs 3] [--layers 60] [--gib 2] [--base v2] [--variant 1] [--no-build]
 *
 * `--layers 1` is the fixture plus one generated layer: the rebuild of a small image.
 * Target (issue 17): rebuild <= 0.5 x the cold build of the changed image.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec.js';
import { buildDiskOurs, type BuildDiskRun } from './build-disk.js';
import { REPO, alternate, benchImage, flagValue, imageReport, median, mib, oursReport, round, type BenchImage } from './support.js';

interface StoreContents {
  /** Blob file names (hex digests) and their sizes. */
  blobs: Map<string, number>;
  /** Names of the files under bootc/objects/, when the store keeps an object store; else null. */
  objects: Set<string> | null;
}

async function storeContents(store: string): Promise<StoreContents> {
  const blobs = new Map<string, number>();
  const blobDir = join(store, 'blobs', 'sha256');
  for (const name of existsSync(blobDir) ? await readdir(blobDir) : []) blobs.set(name, (await stat(join(blobDir, name))).size);
  const objectsDir = join(store, 'bootc', 'objects');
  let objects: Set<string> | null = null;
  if (existsSync(objectsDir)) {
    objects = new Set();
    for (const fanout of await readdir(objectsDir)) {
      if (/^[0-9a-f]{2}$/.test(fanout)) for (const name of await readdir(join(objectsDir, fanout))) objects.add(fanout + name);
    }
  }
  return { blobs, objects };
}

interface WarmRun {
  first: BuildDiskRun;
  rebuild: BuildDiskRun;
  blobsWritten: number;
  blobBytesWritten: number;
  objectsWritten: number | null;
  /** Layers the rebuild's pull found in the store (`… done (cached)` progress lines). */
  layersCached: number;
}

async function warmRun(image: BenchImage, changed: BenchImage, dir: string): Promise<WarmRun> {
  const store = join(dir, 'store');
  await mkdir(join(dir, 'first'));
  await mkdir(join(dir, 'rebuild'));
  const first = await buildDiskOurs(image.archiveRef, join(dir, 'first'), store);
  const before = await storeContents(store);
  const rebuild = await buildDiskOurs(changed.archiveRef, join(dir, 'rebuild'), store);
  const after = await storeContents(store);
  const written = [...after.blobs].filter(([name]) => !before.blobs.has(name));
  return {
    first,
    rebuild,
    blobsWritten: written.length,
    blobBytesWritten: written.reduce((sum, [, size]) => sum + size, 0),
    // Names new after the rebuild: what it wrote (the store also drops what only the old image had).
    objectsWritten: after.objects === null || before.objects === null ? null : [...after.objects].filter((o) => !before.objects!.has(o)).length,
    layersCached: rebuild.lines.filter((line) => /^Layer sha256:\w+: .* done \(cached\)$/.test(line)).length,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const runs = Number(flagValue(args, '--runs') ?? 3);
  const variant = Number(flagValue(args, '--variant') ?? 1);
  const withoutVariant = args.filter((a, i) => a !== '--variant' && args[i - 1] !== '--variant');
  const image = await benchImage(['--image', 'large', ...withoutVariant]);
  const changed = await benchImage(['--image', 'large', ...withoutVariant, '--variant', String(variant)]);
  if (!args.includes('--no-build')) await run({ description: 'Building the CLI (npm run build)', argv: ['npm', 'run', 'build'], cwd: REPO });

  const { ours: warm, peer: cold } = await alternate(
    'rebuild',
    runs,
    (dir) => warmRun(image, changed, dir),
    (dir) => buildDiskOurs(changed.archiveRef, dir, join(dir, 'store')),
  );
  const rebuilds = warm.map((w) => w.rebuild);
  const rebuildMedian = median(rebuilds.map((r) => r.seconds));
  const coldMedian = median(cold.map((r) => r.seconds));
  const report = {
    benchmark: 'rebuild',
    image: imageReport(image),
    changedImage: { ref: changed.archiveRef, change: `last generated layer reseeded (variant ${variant})`, changedLayerMiB: mib(changed.layerBytes.at(-1) ?? 0) },
    runs,
    firstBuild: { medianSeconds: round(median(warm.map((w) => w.first.seconds))) },
    rebuild: {
      ...oursReport(rebuilds, changed),
      store: {
        medianBlobsWritten: median(warm.map((w) => w.blobsWritten)),
        medianBlobMiBWritten: mib(median(warm.map((w) => w.blobBytesWritten))),
        medianLayersCached: median(warm.map((w) => w.layersCached)),
        objectsWritten: warm.every((w) => w.objectsWritten !== null) ? median(warm.map((w) => w.objectsWritten!)) : null,
        note:
          warm.every((w) => w.objectsWritten !== null)
            ? 'the store keeps an object store (<store>/bootc): objectsWritten counts the objects the rebuild added to it; unchanged layers were not imported again'
            : 'the store keeps blobs only (no bootc/objects in it): the object store is staged in --work-dir and removed after each build, so every rebuild imports every layer again',
      },
      diskVirtualBytes: rebuilds[0]?.diskVirtualBytes,
    },
    cold: { ...oursReport(cold, changed), diskVirtualBytes: cold[0]?.diskVirtualBytes },
    ratioRebuildToCold: round(rebuildMedian / coldMedian),
    target: { ratioAtMost: 0.5 },
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

await main();
