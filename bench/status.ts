/**
 * `bootc status` (and `--version`) of the single executable, dist/bootc, against the same
 * CLI run by node from dist/ (`node dist/cli.js`), alternating, whole-process wall time; and
 * the sizes of what ships the executable: dist/bootc, the tool image, its oci-archive.
 *
 *   npx tsx bench/status.ts [--runs 15] [--no-build]
 *
 * Needs `make tool-image` for the image sizes (reported as null without it). On a machine
 * not installed by bootc, status answers from its empty sysroot: the figure is start-up plus
 * the status code path, which is what a user waits for.
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { run } from '../src/core/exec.js';
import { REPO, median, round } from './support.js';

const execFileAsync = promisify(execFile);

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' }, 'no-build': { type: 'boolean', default: false } } });
const runs = Number(values.runs);

async function timeOnce(argv: [string, ...string[]]): Promise<number> {
  const start = performance.now();
  await execFileAsync(argv[0], argv.slice(1), { cwd: REPO });
  return (performance.now() - start) / 1000;
}

async function imageSize(ref: string): Promise<number | null> {
  try {
    const r = await run({ description: 'Reading the tool image size', argv: ['podman', 'image', 'inspect', '--format', '{{.Size}}', ref] });
    return Number(r.stdout.trim());
  } catch {
    return null;
  }
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

if (!values['no-build']) {
  await run({ description: 'Building dist/', argv: ['npm', 'run', '--silent', 'build'], cwd: REPO });
  await run({ description: 'Building dist/bootc', argv: ['node', 'scripts/build-dist.mjs'], cwd: REPO });
}

const single = join(REPO, 'dist/bootc');
const viaNode: [string, ...string[]] = ['node', join(REPO, 'dist/cli.js')];
const cases = {
  status: ['status', '--format', 'json'],
  version: ['--version'],
} as const;

const results: Record<string, { single: number[]; node: number[] }> = {};
for (const [name, args] of Object.entries(cases)) {
  const r = { single: [] as number[], node: [] as number[] };
  // One warm-up each: the first start reads the executables from disk.
  await timeOnce([single, ...args]);
  await timeOnce([...viaNode, ...args]);
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? (['single', 'node'] as const) : (['node', 'single'] as const);
    for (const which of order) {
      r[which].push(await timeOnce(which === 'single' ? [single, ...args] : [...viaNode, ...args]));
    }
  }
  results[name] = r;
}

const { version } = (await import(join(REPO, 'package.json'), { with: { type: 'json' } })).default as { version: string };
const report = {
  bench: 'status',
  runs,
  medianSeconds: Object.fromEntries(
    Object.entries(results).map(([name, r]) => [name, { singleExecutable: round(median(r.single)), nodeDistCli: round(median(r.node)) }]),
  ),
  ratio: Object.fromEntries(Object.entries(results).map(([name, r]) => [name, round(median(r.single) / median(r.node))])),
  targetRatio: 1.0,
  sizesBytes: {
    distBootc: await fileSize(single),
    toolImage: await imageSize('localhost/bootc-ts:latest'),
    toolImageOciArchive: await fileSize(join(REPO, `dist/bootc-ts-${version}.ociarchive`)),
  },
};
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
