/**
 * bench/pull: pull fixture:v2 from a local docker-registry into an empty cache, alternating
 * with `skopeo copy docker://… oci:DIR`, and print JSON: median seconds of each, the median
 * ratio ours/skopeo, peak RSS of each (`/usr/bin/time -f %M` on the child), and the blob
 * bytes a second pull of the same image transfers. No assertions.
 *
 *   npx tsx bench/pull.ts [runs=5]          BENCH_VERIFY_DIFFIDS=1 to add the diff-id check
 *
 * The pull under test is bench/pull-child.mjs on the built dist/ (`npm run build` first),
 * in a process of its own so its RSS is its own. Both sides are timed as whole processes
 * (start-up included); the child's own pull time is reported beside it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec.js';
import { ociLayoutDir, ociLayoutRef } from '../fixtures/paths.js';
import { pushToRegistry, startRegistry } from '../test/support/registry.js';
import { median } from './support.js';

/** Run argv under `/usr/bin/time -f %M`; returns wall seconds, max RSS in KiB and stdout. */
async function timed(argv: string[]): Promise<{ seconds: number; maxRssKiB: number; stdout: string }> {
  const started = process.hrtime.bigint();
  const result = await run({ description: `Benchmarking ${argv[0]}`, argv: ['/usr/bin/time', '-f', 'maxrss=%M', ...argv] });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const match = /maxrss=(\d+)/.exec(result.stderr);
  return { seconds, maxRssKiB: match ? Number(match[1]) : NaN, stdout: result.stdout };
}

async function fixtureArchitecture(): Promise<string> {
  const index = JSON.parse(await readFile(join(ociLayoutDir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'v2')!;
  const blob = async (d: string): Promise<string> => readFile(join(ociLayoutDir, 'blobs', 'sha256', d.slice(7)), 'utf8');
  const manifest = JSON.parse(await blob(entry.digest)) as { config: { digest: string } };
  return (JSON.parse(await blob(manifest.config.digest)) as { architecture: string }).architecture;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5);
  const architecture = await fixtureArchitecture();
  const registry = await startRegistry();
  const work = await mkdtemp('/var/tmp/bootc-bench-pull-');
  try {
    await pushToRegistry(registry, ociLayoutRef('v2'), 'fixture:v2');
    const ref = `${registry.host}/fixture:v2`;
    const self = [process.execPath, new URL('./pull-child.mjs', import.meta.url).pathname];
    const ours: Array<{ seconds: number; inner: number; rss: number }> = [];
    const skopeo: Array<{ seconds: number; rss: number }> = [];
    let secondPullBytes = NaN;
    for (let i = 0; i < runs; i++) {
      // Alternate who goes first so page-cache and registry warm-up favour neither.
      const order = i % 2 === 0 ? ['ours', 'skopeo'] : ['skopeo', 'ours'];
      for (const who of order) {
        const dir = join(work, `${who}-${i}`);
        if (who === 'ours') {
          const r = await timed([...self, ref, dir, architecture]);
          const inner = JSON.parse(r.stdout) as { seconds: number };
          ours.push({ seconds: r.seconds, inner: inner.seconds, rss: r.maxRssKiB });
          if (i === 0) {
            const again = await timed([...self, ref, dir, architecture]);
            secondPullBytes = (JSON.parse(again.stdout) as { bytesFetched: number }).bytesFetched;
          }
        } else {
          const r = await timed(['skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:v2`]);
          skopeo.push({ seconds: r.seconds, rss: r.maxRssKiB });
        }
        await rm(dir, { recursive: true, force: true });
      }
    }
    const ratios = ours.map((o, i) => o.seconds / skopeo[i]!.seconds);
    process.stdout.write(
      JSON.stringify(
        {
          image: 'fixture:v2',
          runs,
          verifyDiffIds: process.env['BENCH_VERIFY_DIFFIDS'] === '1',
          oursMedianSeconds: median(ours.map((o) => o.seconds)),
          oursMedianPullSecondsInsideProcess: median(ours.map((o) => o.inner)),
          skopeoMedianSeconds: median(skopeo.map((s) => s.seconds)),
          medianRatioOursToSkopeo: median(ratios),
          oursPeakRssMB: Math.max(...ours.map((o) => o.rss)) / 1024,
          skopeoPeakRssMB: Math.max(...skopeo.map((s) => s.rss)) / 1024,
          secondPullBlobBytes: secondPullBytes,
          note: 'both timed as whole processes, start-up included; ours runs from dist/',
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
