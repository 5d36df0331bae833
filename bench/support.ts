/**
 * What the benchmark scripts share: the image a bench runs on (`--image`), medians,
 * rounding, step timing of a child's output, peak RSS of a child and of our CLI by step.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { run, spawnStreaming } from '../src/core/exec.js';
import { fixtureTags, ociArchivePath, ociArchiveRef, ociLayoutDir, ociLayoutRef, type FixtureTag } from '../fixtures/paths.js';
import { largeImage, largeImageOptions, type LargeImage } from '../fixtures/large-image.js';

export const REPO = fileURLToPath(new URL('..', import.meta.url));

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function medianSteps(all: readonly Record<string, number>[]): Record<string, number> {
  const names = [...new Set(all.flatMap((s) => Object.keys(s)))];
  return Object.fromEntries(names.map((n) => [n, round(median(all.map((s) => s[n] ?? 0)))]));
}

/** Flush what the previous run left dirty so it does not slow the next one down. */
export async function settle(): Promise<void> {
  await run({ description: 'Flushing page cache writes', argv: ['sync'] });
}

/** The image a bench runs on: a fixture, or the generated many-layer image (large-image.ts). */
export interface BenchImage {
  /** For the report: `fixture:v2`, `large`. */
  name: string;
  archivePath: string;
  /** `oci-archive:<file>:<tag>` */
  archiveRef: string;
  /** `oci:<dir>:<tag>` */
  layoutRef: string;
  layoutDir: string;
  /** The reference name inside the archive and the layout. */
  tag: string;
  /** Each layer's compressed size, in manifest order. */
  layerBytes: number[];
  /** What large-image.ts reported, for the generated image. */
  generated?: LargeImage;
}

/** The value after `flag` in `args`, if any. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
}

/**
 * `--image fixture:TAG` (the default, fixture:v2; `--tag TAG` still names the fixture) or
 * `--image large [--layers N] [--gib G] [--base TAG] [--variant V]`: the generated image,
 * made first when it is not in the cache.
 */
export async function benchImage(args: readonly string[]): Promise<BenchImage> {
  const image = flagValue(args, '--image') ?? `fixture:${flagValue(args, '--tag') ?? 'v2'}`;
  if (image === 'large') {
    const generated = await largeImage(largeImageOptions(args));
    return {
      name: 'large',
      archivePath: generated.archivePath,
      archiveRef: generated.archiveRef,
      layoutRef: generated.layoutRef,
      layoutDir: generated.layoutDir,
      tag: 'large',
      layerBytes: await layoutLayerBytes(generated.layoutDir, 'large'),
      generated,
    };
  }
  const tag = /^fixture:(.+)$/.exec(image)?.[1];
  if (tag === undefined || !(fixtureTags as readonly string[]).includes(tag)) {
    throw new Error(`--image ${image}: expected fixture:TAG (TAG one of ${fixtureTags.join(', ')}) or large`);
  }
  const fixture = tag as FixtureTag;
  return {
    name: image,
    archivePath: ociArchivePath(fixture),
    archiveRef: ociArchiveRef(fixture),
    layoutRef: ociLayoutRef(fixture),
    layoutDir: ociLayoutDir,
    tag,
    layerBytes: await layoutLayerBytes(ociLayoutDir, tag),
  };
}

/** The compressed layer sizes of the manifest tagged `tag` in an OCI layout. */
async function layoutLayerBytes(layoutDir: string, tag: string): Promise<number[]> {
  const blob = async (digest: string): Promise<string> => readFile(join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'utf8');
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`no manifest tagged ${tag} in ${layoutDir}`);
  return (JSON.parse(await blob(entry.digest)) as { layers: Array<{ size: number }> }).layers.map((l) => l.size);
}

/**
 * `argv` under `/usr/bin/time -f %M -o rssFile`, which records the largest resident set of
 * the program and of the programs it waited for (not their sum). `mergeStderr`: the
 * program's stderr joins its stdout, where timeSteps reads the step markers.
 */
export function underTime(rssFile: string, argv: readonly string[], mergeStderr: boolean): [string, ...string[]] {
  return ['bash', '-c', `exec /usr/bin/time -f %M -o "$1" "\${@:2}"${mergeStderr ? ' 2>&1' : ''}`, 'bash', rssFile, ...argv];
}

/** What `/usr/bin/time -f %M -o FILE` wrote: KiB (its last line; a failed program adds one before). */
export async function readPeakRssKiB(rssFile: string): Promise<number> {
  return Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop());
}

export interface Timed {
  seconds: number;
  steps: Record<string, number>;
  lines: string[];
  /** When each of `lines` arrived, seconds from the start. */
  lineSeconds: number[];
  /** When each step started, seconds from the start, in order. */
  stepStarts: [string, number][];
  /** With `sampleRssOf`: the largest resident set seen of those processes in each step, KiB. */
  stepPeakRssKiB?: Record<string, number>;
}

/** How often timeSteps samples resident sets: often enough for steps of a second or more. */
const RSS_SAMPLE_MS = 100;

/**
 * Runs `argv`, timestamping each line of its stdout (merge stderr in `argv` to see it);
 * a line matching a step marker starts that step, which lasts until the next step or the
 * end (a step seen twice adds up). `sampleRssOf`: an executable whose processes under the
 * child (our CLI: node) have their resident set sampled, so memory is told by step.
 */
export async function timeSteps(
  description: string,
  argv: [string, ...string[]],
  firstStep: string,
  markers: (line: string) => string | null,
  options: { sampleRssOf?: string } = {},
): Promise<Timed> {
  const start = performance.now();
  const { child, done } = spawnStreaming({ description, argv, cwd: REPO, stdio: { stdin: 'ignore' } });
  const marks: [string, number][] = [[firstStep, start]];
  const lines: string[] = [];
  const lineSeconds: number[] = [];
  const stepPeakRssKiB: Record<string, number> = {};
  const sampleRssOf = options.sampleRssOf;
  const sampler =
    sampleRssOf === undefined || child.pid === undefined
      ? undefined
      : setInterval(() => {
          const kib = residentKiBOf(child.pid!, sampleRssOf);
          const step = marks[marks.length - 1]![0];
          if (kib > (stepPeakRssKiB[step] ?? 0)) stepPeakRssKiB[step] = kib;
        }, RSS_SAMPLE_MS);
  let partial = '';
  try {
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
      const now = performance.now();
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        lineSeconds.push((now - start) / 1000);
        const step = markers(line);
        if (step !== null) marks.push([step, now]);
      }
    }
    await done;
  } finally {
    if (sampler) clearInterval(sampler);
  }
  const end = performance.now();
  const steps: Record<string, number> = {};
  marks.forEach(([name, at], i) => {
    steps[name] = round(((marks[i + 1]?.[1] ?? end) - at) / 1000 + (steps[name] ?? 0));
  });
  const stepStarts = marks.map(([name, at]): [string, number] => [name, (at - start) / 1000]);
  return { seconds: (end - start) / 1000, steps, lines, lineSeconds, stepStarts, ...(sampleRssOf !== undefined ? { stepPeakRssKiB } : {}) };
}

/**
 * The largest VmRSS (KiB) of the processes under `root` (itself included) running `exe`.
 * Not their sum: a child between fork and exec still runs `exe` and shares its parent's pages.
 */
function residentKiBOf(root: number, exe: string): number {
  let kib = 0;
  const pending = [root];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    try {
      if (readlinkSync(`/proc/${pid}/exe`) === exe) {
        const rss = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        kib = Math.max(kib, rss ? Number(rss[1]) : 0);
      }
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
        if (children) pending.push(...children.split(' ').map(Number));
      }
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return kib;
}

/**
 * Seconds from each layer's import start to the next layer's start, from the plain
 * progress lines `Importing layer i/N` (printed as a layer starts; the last one's gap runs
 * to the next line that is not a debug line, or the next step, whichever comes first: in
 * install, which prints nothing between import and deployment, it includes the deployment). Layers import two at a time (LAYER_CONCURRENCY
 * in src/store/layer-import.ts), so this is not one layer's duration: a long gap after
 * layer k says the pipeline waited there for a worker, i.e. on k or the layer beside it.
 * Indexed by layer, 0-based.
 */
export function importStartGapsByLayer(timed: Timed): number[] {
  const out: number[] = [];
  const nextStep = (after: number): number => timed.stepStarts.find(([, at]) => at > after)?.[1] ?? timed.seconds;
  let current: { layer: number; at: number } | undefined;
  timed.lines.forEach((line, i) => {
    const at = timed.lineSeconds[i]!;
    const m = /^Importing layer (\d+)\/\d+$/.exec(line);
    if (current && (m || !line.startsWith('debug:'))) {
      out[current.layer] = round(Math.min(at, nextStep(current.at)) - current.at);
      current = undefined;
    }
    if (m) current = { layer: Number(m[1]) - 1, at };
  });
  if (current) out[current.layer] = round(nextStep(current.at) - current.at);
  return out;
}

/** Element-wise medians of per-layer figures over runs. */
export function medianByLayer(all: readonly number[][]): number[] {
  const n = Math.max(0, ...all.map((a) => a.length));
  return Array.from({ length: n }, (_, i) => round(median(all.map((a) => a[i] ?? 0))));
}

/** Per-step medians of the sampled resident sets, in MiB. */
export function medianStepRssMiB(all: readonly (Record<string, number> | undefined)[]): Record<string, number> {
  const mib = all.map((s) => Object.fromEntries(Object.entries(s ?? {}).map(([k, v]) => [k, v / 1024])));
  return medianSteps(mib);
}

export function mib(bytes: number): number {
  return round(bytes / 1024 ** 2);
}

/**
 * `runs` rounds of ours and the peer tool, alternating which goes first so both see the same
 * machine load; each run gets a fresh empty directory, removed after it, under a work
 * directory removed at the end.
 */
export async function alternate<A, B>(
  name: string,
  runs: number,
  ours: (dir: string) => Promise<A>,
  peer: (dir: string) => Promise<B>,
): Promise<{ ours: A[]; peer: B[] }> {
  const work = await mkdtemp(`/var/tmp/bench-${name}-`);
  const results: { ours: A[]; peer: B[] } = { ours: [], peer: [] };
  try {
    for (let i = 0; i < runs; i++) {
      for (const which of i % 2 === 0 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const)) {
        const dir = join(work, `${which}-${i}`);
        await mkdir(dir);
        await settle();
        if (which === 'ours') results.ours.push(await ours(dir));
        else results.peer.push(await peer(dir));
        await rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return results;
}

/** What a report says of the image a bench ran on. */
export function imageReport(image: BenchImage): Record<string, unknown> {
  return {
    name: image.name,
    ref: image.archiveRef,
    layers: image.layerBytes.length,
    compressedMiB: mib(image.layerBytes.reduce((a, b) => a + b, 0)),
    ...(image.generated ? { generatedLayers: image.generated.generatedLayers, generatedUncompressedMiB: mib(image.generated.generatedUncompressedBytes) } : {}),
  };
}

/** Our side's figures over runs: medians whole and by step, peak RSS (whole and by step), the import's layer start gaps. */
export function oursReport(runs: readonly (Timed & { peakRssKiB: number })[], image: BenchImage): Record<string, unknown> {
  return {
    medianSeconds: round(median(runs.map((r) => r.seconds))),
    seconds: runs.map((r) => round(r.seconds)),
    medianStepSeconds: medianSteps(runs.map((r) => r.steps)),
    peakRssMiB: round(Math.max(...runs.map((r) => r.peakRssKiB)) / 1024),
    cliMedianPeakRssMiBByStep: medianStepRssMiB(runs.map((r) => r.stepPeakRssKiB)),
    importStartGapSecondsByLayer: medianByLayer(runs.map(importStartGapsByLayer)),
    layerCompressedMiB: image.layerBytes.map(mib),
  };
}

/** The peer's figures over runs: medians whole and by step, peak RSS. */
export function peerReport(runs: readonly (Timed & { peakRssKiB: number })[]): Record<string, unknown> {
  return {
    medianSeconds: round(median(runs.map((r) => r.seconds))),
    seconds: runs.map((r) => round(r.seconds)),
    medianStepSeconds: medianSteps(runs.map((r) => r.steps)),
    peakRssMiB: round(Math.max(...runs.map((r) => r.peakRssKiB)) / 1024),
  };
}
