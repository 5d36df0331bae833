/**
 * Progress events, shaped like upstream bootc's `--progress-fd` JSON Lines (progress v0):
 * `Start`, `ProgressBytes` (downloads, per-layer subtasks) and `ProgressSteps` (phases).
 * The pipeline emits events; sinks render them: JSON lines on a file descriptor, plain
 * lines for logs and CI, and (on a terminal) a live renderer.
 */
import { createWriteStream, fstatSync, type WriteStream } from 'node:fs';
import { UserError } from './errors.js';
import { humanBytes, PROGRESS_API_VERSION, type ProgressEvent, type ProgressSink } from './progress-events.js';

export {
  PROGRESS_API_VERSION,
  decimalBytes,
  humanBytes,
  type BytesEvent,
  type BytesSubtask,
  type ProgressEvent,
  type ProgressSink,
  type StepsEvent,
  type StepsSubtask,
} from './progress-events.js';

/** Fans events out to every sink. A pipeline gets one of these and never knows the sinks. */
export class Progress {
  private readonly sinks: ProgressSink[];
  constructor(sinks: ProgressSink[] = []) {
    this.sinks = sinks;
  }
  emit(event: ProgressEvent): void {
    for (const sink of this.sinks) sink.handle(event);
  }
  start(): void {
    this.emit({ type: 'Start', version: PROGRESS_API_VERSION });
  }
  async close(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.close()));
  }
  /** A reporter that drops everything: for library callers and tests that do not care. */
  static silent(): Progress {
    return new Progress([]);
  }
}

/** Lossy byte updates are limited to this rate, as upstream does (5 per second). */
const REFRESH_HZ = 5;

function isFinal(event: ProgressEvent): boolean {
  return event.type !== 'ProgressBytes' || event.bytes >= event.bytesTotal;
}

/** JSON Lines on a stream: one compact object per line, byte updates rate-limited. */
export class JsonLinesSink implements ProgressSink {
  private lastBytesAt = new Map<string, number>();
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly now: () => number = Date.now,
  ) {}

  handle(event: ProgressEvent): void {
    if (event.type === 'ProgressBytes' && !isFinal(event)) {
      const key = `${event.task}/${event.id}`;
      const last = this.lastBytesAt.get(key);
      const t = this.now();
      if (last !== undefined && t - last < 1000 / REFRESH_HZ) return;
      this.lastBytesAt.set(key, t);
    }
    this.out.write(JSON.stringify(event) + '\n');
  }

  async close(): Promise<void> {
    const out = this.out as WriteStream;
    if (typeof out.end === 'function' && out !== (process.stdout as unknown) && out !== (process.stderr as unknown)) {
      await new Promise<void>((resolve) => out.end(resolve));
    }
  }
}

/** Open `--progress-fd N` for JSON lines; 0, 1 and 2 are refused as upstream does. */
export function openProgressFd(fd: number): JsonLinesSink {
  if (!Number.isInteger(fd) || fd <= 2) {
    throw new UserError(`--progress-fd ${fd} is not usable`, {
      hint: 'pass a file descriptor above 2 that is open for writing, e.g. `3>progress.jsonl --progress-fd 3`',
    });
  }
  try {
    fstatSync(fd);
  } catch {
    throw new UserError(`--progress-fd ${fd}: file descriptor ${fd} is not open`, {
      hint: `open it in the shell first, e.g. \`bootc … --progress-fd ${fd} ${fd}>progress.jsonl\``,
    });
  }
  return new JsonLinesSink(createWriteStream('', { fd, autoClose: true }));
}

/**
 * Plain lines for logs, CI and serial consoles: one line when a step starts or a
 * download finishes, and a byte update at most every few seconds per task.
 */
export class PlainLinesSink implements ProgressSink {
  private lastStep = new Map<string, string>();
  private lastBytesAt = new Map<string, number>();
  private doneSubtasks = new Set<string>();
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly now: () => number = Date.now,
    private readonly bytesIntervalMs: number = 5000,
  ) {}

  handle(event: ProgressEvent): void {
    if (event.type === 'Start') return;
    if (event.type === 'ProgressSteps') {
      const current = event.subtasks.find((s) => !s.completed) ?? event.subtasks.at(-1);
      const label = current ? current.description : event.description;
      if (this.lastStep.get(event.task) !== label) {
        this.lastStep.set(event.task, label);
        this.out.write(`${label}\n`);
      }
      return;
    }
    for (const sub of event.subtasks) {
      const key = `${event.task}/${sub.id}`;
      if (sub.bytes >= sub.bytesTotal && !this.doneSubtasks.has(key)) {
        this.doneSubtasks.add(key);
        const cached = sub.bytesCached >= sub.bytesTotal && sub.bytesTotal > 0 ? ' (cached)' : '';
        this.out.write(`${sub.description}: ${humanBytes(sub.bytesTotal)} done${cached}\n`);
      }
    }
    const t = this.now();
    const last = this.lastBytesAt.get(event.task);
    if (event.bytes < event.bytesTotal && (last === undefined || t - last >= this.bytesIntervalMs)) {
      this.lastBytesAt.set(event.task, t);
      this.out.write(`${event.description}: ${humanBytes(event.bytes)} / ${humanBytes(event.bytesTotal)}\n`);
    }
  }

  async close(): Promise<void> {}
}


export interface ProgressOptions {
  /** `--progress-fd N`: JSON lines on that descriptor. */
  progressFd?: number;
  /** `--quiet`: no human progress (JSON lines still go to the fd). */
  quiet?: boolean;
  /** Where human progress goes; stderr, so stdout stays clean for the command's output. */
  stream?: NodeJS.WriteStream;
}

/** Pick the sinks for a command: JSON lines on the fd, listr2 on a terminal, plain lines otherwise. */
export async function createProgress(opts: ProgressOptions = {}): Promise<Progress> {
  const sinks: ProgressSink[] = [];
  if (opts.progressFd !== undefined) sinks.push(openProgressFd(opts.progressFd));
  const stream = opts.stream ?? process.stderr;
  if (!opts.quiet) {
    if (stream.isTTY && process.env['TERM'] !== 'dumb') {
      const { ListrSink } = await import('./progress-terminal.js');
      sinks.push(new ListrSink());
    } else {
      sinks.push(new PlainLinesSink(stream));
    }
  }
  const progress = new Progress(sinks);
  progress.start();
  return progress;
}
