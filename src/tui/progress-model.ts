/**
 * The progress screen's model: folds the install's Progress events (upstream's
 * ProgressSteps / ProgressBytes) into named steps, a byte count and an ETA. Pure: the
 * time of each event is passed in.
 */
import { humanBytes, type ProgressEvent } from '../core/progress.js';

export interface StepView {
  description: string;
  completed: boolean;
}

export interface BytesView {
  description: string;
  bytes: number;
  bytesTotal: number;
  /** Bytes per second since this task's first event; null until two samples differ. */
  rate: number | null;
  etaSeconds: number | null;
}

export interface ProgressView {
  steps: StepView[];
  bytes: BytesView | null;
  /** The running inner step, e.g. "Importing layer 3/6". */
  detail: string | null;
  /** Where each byte task started counting: the rate excludes what was cached before. */
  firstSample: Record<string, { at: number; bytes: number }>;
}

export const emptyProgress: ProgressView = { steps: [], bytes: null, detail: null, firstSample: {} };

/** Event descriptions end in a digest ("Pulling Image: sha256:…"), too wide for 80 columns. */
const shortDescription = (d: string): string => d.replace(/: sha256:[0-9a-f]+$/, '');

export function foldProgress(view: ProgressView, event: ProgressEvent, nowMs: number): ProgressView {
  if (event.type === 'Start') return view;
  if (event.type === 'ProgressSteps') {
    // The install's own phases are the step list; inner step events (layer import) are the detail line.
    if (event.task !== 'install') {
      const running = event.subtasks.find((s) => !s.completed);
      return { ...view, detail: running ? running.description : shortDescription(event.description) };
    }
    return { ...view, detail: null, steps: event.subtasks.map((s) => ({ description: s.description, completed: s.completed })) };
  }
  const first = view.firstSample[event.task] ?? { at: nowMs, bytes: event.bytes };
  const elapsed = (nowMs - first.at) / 1000;
  const moved = event.bytes - first.bytes;
  const rate = elapsed > 0 && moved > 0 ? moved / elapsed : null;
  const etaSeconds = rate !== null ? Math.max(0, (event.bytesTotal - event.bytes) / rate) : null;
  return {
    ...view,
    firstSample: view.firstSample[event.task] ? view.firstSample : { ...view.firstSample, [event.task]: first },
    bytes: { description: shortDescription(event.description), bytes: event.bytes, bytesTotal: event.bytesTotal, rate, etaSeconds },
  };
}

export function formatEta(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One line: "Pulling image: 12.0 MiB / 300.0 MiB, 4.0 MiB/s, ETA 1m12s". */
export function formatBytesLine(b: BytesView): string {
  const parts = [`${b.description}: ${humanBytes(b.bytes)} / ${humanBytes(b.bytesTotal)}`];
  if (b.rate !== null) parts.push(`${humanBytes(Math.round(b.rate))}/s`);
  if (b.etaSeconds !== null && b.bytes < b.bytesTotal) parts.push(`ETA ${formatEta(b.etaSeconds)}`);
  return parts.join(', ');
}
