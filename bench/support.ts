/** What the benchmark scripts share: medians, rounding, step timing of a child's output. */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { run, spawnStreaming } from '../src/core/exec.js';

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

export interface Timed {
  seconds: number;
  steps: Record<string, number>;
  lines: string[];
}

/**
 * Runs `argv`, stdout and stderr merged, timestamping each line; a line matching a step
 * marker starts that step, which lasts until the next step or the end (a step seen twice
 * adds up).
 */
export async function timeSteps(
  description: string,
  argv: [string, ...string[]],
  firstStep: string,
  markers: (line: string) => string | null,
): Promise<Timed> {
  const start = performance.now();
  const { child, done } = spawnStreaming({ description, argv, cwd: REPO, stdio: { stdin: 'ignore' } });
  const marks: [string, number][] = [[firstStep, start]];
  const lines: string[] = [];
  let partial = '';
  for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
    const now = performance.now();
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      const step = markers(line);
      if (step !== null) marks.push([step, now]);
    }
  }
  await done;
  const end = performance.now();
  const steps: Record<string, number> = {};
  marks.forEach(([name, at], i) => {
    steps[name] = round(((marks[i + 1]?.[1] ?? end) - at) / 1000 + (steps[name] ?? 0));
  });
  return { seconds: (end - start) / 1000, steps, lines };
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
