/**
 * The progress events (upstream bootc's `--progress-fd` JSON Lines, progress v0) and what a
 * sink is: shared by the pipeline's Progress (progress.ts) and the terminal renderer
 * (progress-terminal.ts), which progress.ts loads only on a terminal.
 */
export const PROGRESS_API_VERSION = '0.1.0';

export interface BytesSubtask {
  subtask: string;
  description: string;
  id: string;
  bytesCached: number;
  bytes: number;
  bytesTotal: number;
}

export interface StepsSubtask {
  subtask: string;
  description: string;
  id: string;
  completed: boolean;
}

export type ProgressEvent =
  | { type: 'Start'; version: string }
  | {
      type: 'ProgressBytes';
      task: string;
      description: string;
      id: string;
      bytesCached: number;
      bytes: number;
      bytesTotal: number;
      stepsCached: number;
      steps: number;
      stepsTotal: number;
      subtasks: BytesSubtask[];
    }
  | {
      type: 'ProgressSteps';
      task: string;
      description: string;
      id: string;
      stepsCached: number;
      steps: number;
      stepsTotal: number;
      subtasks: StepsSubtask[];
    };

export type BytesEvent = Extract<ProgressEvent, { type: 'ProgressBytes' }>;
export type StepsEvent = Extract<ProgressEvent, { type: 'ProgressSteps' }>;

export interface ProgressSink {
  handle(event: ProgressEvent): void;
  close(): Promise<void>;
}

function scaled(n: number, base: number, units: readonly string[]): string {
  let v = n;
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Bytes for people: `512 B`, `1.5 MiB`. */
export function humanBytes(n: number): string {
  return scaled(n, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB']);
}

/** Bytes in decimal units, where upstream's output uses them (`181.4 MB`: upgrade --check, fsck, gc). */
export function decimalBytes(n: number): string {
  return scaled(n, 1000, ['B', 'kB', 'MB', 'GB', 'TB']);
}

