/**
 * bench/import: import every layer of fixture:v2 (read from the fixture OCI layout,
 * gunzipped with node:zlib as the puller does) into an empty object store, side by side in
 * the same run with `umoci unpack` of the same image. Runs alternate so both see the same
 * machine load. Prints one JSON document; asserts nothing.
 *
 *   npx tsx bench/import.ts [--runs 5] [--tag v2]
 *
 * Our import runs in a child process so its peak RSS is its own.
 * Target (issue 4): median ratio ours/umoci <= 1.0.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { run } from '../src/core/exec.js';
import { importLayer } from '../src/store/layer-import.js';
import { ociLayoutDir, type FixtureTag } from '../fixtures/paths.js';
import { alternate, median, round } from './support.js';

interface ChildResult {
  seconds: number;
  maxRssKiB: number;
  objectsWritten: number;
  bytesWritten: number;
}

function blobPath(digest: string): string {
  const [algo, hex] = digest.split(':') as [string, string];
  return join(ociLayoutDir, 'blobs', algo, hex);
}

function layersOf(tag: string): Array<{ diffId: string; blob: string; gzip: boolean }> {
  const index = JSON.parse(readFileSync(join(ociLayoutDir, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!desc) throw new Error(`no tag ${tag} in ${ociLayoutDir} (build the fixtures with \`make fixtures\`)`);
  const manifest = JSON.parse(readFileSync(blobPath(desc.digest), 'utf8')) as {
    config: { digest: string };
    layers: Array<{ digest: string; mediaType: string }>;
  };
  const config = JSON.parse(readFileSync(blobPath(manifest.config.digest), 'utf8')) as { rootfs: { diff_ids: string[] } };
  return manifest.layers.map((l, i) => ({
    diffId: config.rootfs.diff_ids[i] as string,
    blob: blobPath(l.digest),
    gzip: l.mediaType.endsWith('gzip'),
  }));
}

async function child(tag: string, root: string): Promise<void> {
  const start = performance.now();
  let objectsWritten = 0;
  let bytesWritten = 0;
  for (const layer of layersOf(tag)) {
    const raw = createReadStream(layer.blob, { highWaterMark: 1024 * 1024 });
    const stream: Readable = layer.gzip ? raw.pipe(createGunzip({ chunkSize: 256 * 1024 })) : raw;
    const r = await importLayer(root, layer.diffId, stream);
    objectsWritten += r.stats.objectsWritten;
    bytesWritten += r.stats.bytesWritten;
  }
  const result: ChildResult = {
    seconds: (performance.now() - start) / 1000,
    maxRssKiB: process.resourceUsage().maxRSS,
    objectsWritten,
    bytesWritten,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? (args[i + 1] as string) : dflt;
  };
  const tag = opt('--tag', 'v2') as FixtureTag;
  if (args[0] === '--child') return child(tag, args[1] as string);

  const runs = Number(opt('--runs', '5'));
  const self = fileURLToPath(import.meta.url);
  const { ours, peer: umoci } = await alternate(
    'import',
    runs,
    async (dir): Promise<ChildResult> => {
      const r = await run({
        description: 'Importing the image into an empty store',
        argv: [process.execPath, '--import', 'tsx', self, '--child', dir, '--tag', tag],
      });
      return JSON.parse(r.stdout.trim().split('\n').pop() as string) as ChildResult;
    },
    async (dir): Promise<number> => {
      const t = performance.now();
      await run({ description: 'Unpacking the image with umoci', argv: ['umoci', 'unpack', '--image', `${ociLayoutDir}:${tag}`, join(dir, 'bundle')] });
      return (performance.now() - t) / 1000;
    },
  );
  const oursMedian = median(ours.map((r) => r.seconds));
  const umociMedian = median(umoci);
  const report = {
    benchmark: 'import',
    image: `fixture:${tag}`,
    runs,
    ours: {
      medianSeconds: round(oursMedian),
      seconds: ours.map((r) => round(r.seconds)),
      peakRssMiB: round(Math.max(...ours.map((r) => r.maxRssKiB)) / 1024),
      objectsWritten: ours[0]?.objectsWritten,
      bytesWritten: ours[0]?.bytesWritten,
    },
    umoci: { medianSeconds: round(umociMedian), seconds: umoci.map(round) },
    ratio: round(oursMedian / umociMedian),
    target: 'ratio <= 1.0',
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

await main();
