/**
 * bench/pull: pull an image (fixture:v2, or the generated many-layer image) from a local
 * docker-registry into an empty cache, alternating with `skopeo copy docker://… oci:DIR`,
 * and print JSON: median seconds of each, the median ratio ours/skopeo, our pull's
 * per-step medians (from its progress events), peak RSS of each (`/usr/bin/time -f %M` on
 * the child), and the blob bytes a second pull of the same image transfers. No assertions.
 *
 *   npx tsx bench/pull.ts [runs=5] [--runs 5] [--image fixture:v2 | --image large [--layers 60] [--gib 2]]
 *                                                 BENCH_VERIFY_DIFFIDS=1 to add the diff-id check
 *
 * The image is pushed to the registry (skopeo, from its OCI layout) before the runs. The
 * pull under test is bench/pull-child.mjs on the built dist/ (`npm run build` first), in a
 * process of its own so its RSS is its own. Both sides are timed as whole processes
 * (start-up included); the child's own pull time is reported beside it.
 * Targets: ratio <= 1.0, peak RSS <= 150 MB; issue 17, on the large image: ratio <= 0.8.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec.js';
import { pushToRegistry, startRegistry } from '../test/support/registry.js';
import { benchImage, flagValue, imageReport, median, medianSteps, round } from './support.js';

/** Run argv under `/usr/bin/time -f %M`; returns wall seconds, max RSS in KiB and stdout. */
async function timed(argv: string[]): Promise<{ seconds: number; maxRssKiB: number; stdout: string }> {
  const started = process.hrtime.bigint();
  const result = await run({ description: `Benchmarking ${argv[0]}`, argv: ['/usr/bin/time', '-f', 'maxrss=%M', ...argv] });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const match = /maxrss=(\d+)/.exec(result.stderr);
  return { seconds, maxRssKiB: match ? Number(match[1]) : NaN, stdout: result.stdout };
}

async function imageArchitecture(layoutDir: string, tag: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  const blob = async (d: string): Promise<string> => readFile(join(layoutDir, 'blobs', 'sha256', d.slice(7)), 'utf8');
  const manifest = JSON.parse(await blob(entry.digest)) as { config: { digest: string } };
  return (JSON.parse(await blob(manifest.config.digest)) as { architecture: string }).architecture;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const positional = args[0] !== undefined && /^\d+$/.test(args[0]) ? args[0] : undefined;
  const runs = Number(flagValue(args, '--runs') ?? positional ?? 5);
  const image = await benchImage(args);
  const architecture = await imageArchitecture(image.layoutDir, image.tag);
  const registry = await startRegistry();
  const work = await mkdtemp('/var/tmp/bootc-bench-pull-');
  try {
    const pushed = image.generated ? 'bench:large' : `fixture:${image.tag}`;
    await pushToRegistry(registry, image.layoutRef, pushed);
    const ref = `${registry.host}/${pushed}`;
    const self = [process.execPath, new URL('./pull-child.mjs', import.meta.url).pathname];
    const ours: Array<{ seconds: number; inner: number; rss: number; steps: Record<string, number> }> = [];
    const skopeo: Array<{ seconds: number; rss: number }> = [];
    let secondPullBytes = NaN;
    for (let i = 0; i < runs; i++) {
      // Alternate who goes first so page-cache and registry warm-up favour neither.
      const order = i % 2 === 0 ? ['ours', 'skopeo'] : ['skopeo', 'ours'];
      for (const who of order) {
        const dir = join(work, `${who}-${i}`);
        if (who === 'ours') {
          const r = await timed([...self, ref, dir, architecture]);
          const inner = JSON.parse(r.stdout) as { seconds: number; steps: Record<string, number> };
          ours.push({ seconds: r.seconds, inner: inner.seconds, rss: r.maxRssKiB, steps: inner.steps });
          if (i === 0) {
            const again = await timed([...self, ref, dir, architecture]);
            secondPullBytes = (JSON.parse(again.stdout) as { bytesFetched: number }).bytesFetched;
          }
        } else {
          const r = await timed(['skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:${image.tag}`]);
          skopeo.push({ seconds: r.seconds, rss: r.maxRssKiB });
        }
        await rm(dir, { recursive: true, force: true });
      }
    }
    const ratios = ours.map((o, i) => o.seconds / skopeo[i]!.seconds);
    process.stdout.write(
      JSON.stringify(
        {
          benchmark: 'pull',
          image: { ...imageReport(image), ref },
          runs,
          verifyDiffIds: process.env['BENCH_VERIFY_DIFFIDS'] === '1',
          oursMedianSeconds: median(ours.map((o) => o.seconds)),
          oursMedianPullSecondsInsideProcess: median(ours.map((o) => o.inner)),
          oursMedianStepSeconds: medianSteps(ours.map((o) => o.steps)),
          skopeoMedianSeconds: median(skopeo.map((s) => s.seconds)),
          medianRatioOursToSkopeo: round(median(ratios)),
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
