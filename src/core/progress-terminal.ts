/**
 * Live progress on a terminal, drawn by listr2: one line per step, with bytes and rate
 * while downloading. Loaded only when stderr is a TTY (see createProgress).
 *
 * listr2 runs a fixed task list, while our steps arrive as events; so each step becomes
 * its own one-task Listr that stays open until the next step starts, and the runs are
 * chained so they draw one below the other.
 */
import { Listr, type ListrTaskWrapper } from 'listr2';
import { humanBytes, type ProgressEvent, type ProgressSink } from './progress-events.js';

type StepTask = ListrTaskWrapper<unknown, never, never>;

interface OpenStep {
  label: string;
  task: StepTask | undefined;
  finish: () => void;
  fail: (err: Error) => void;
  startedAt: number;
}

export class ListrSink implements ProgressSink {
  private chain: Promise<void> = Promise.resolve();
  private open: OpenStep | undefined;
  private lastBytesLine = '';

  constructor(private readonly now: () => number = Date.now) {}

  handle(event: ProgressEvent): void {
    if (event.type === 'Start') return;
    if (event.type === 'ProgressSteps') {
      const current = event.subtasks.find((s) => !s.completed) ?? event.subtasks.at(-1);
      this.begin(current ? current.description : event.description);
      return;
    }
    // Bytes belong to the step that is running (e.g. "Pulling image"); only a download
    // outside any step opens one of its own.
    if (!this.open) this.begin(event.description);
    const open = this.open;
    if (!open?.task) return;
    const seconds = Math.max((this.now() - open.startedAt) / 1000, 0.001);
    const fetched = event.bytes - event.bytesCached;
    const rate = fetched > 0 ? `, ${humanBytes(Math.round(fetched / seconds))}/s` : '';
    const cached = event.bytesCached > 0 ? `, ${humanBytes(event.bytesCached)} cached` : '';
    const layersDone = event.subtasks.filter((s) => s.bytes >= s.bytesTotal).length;
    const line = `${humanBytes(event.bytes)} / ${humanBytes(event.bytesTotal)} (${layersDone}/${event.subtasks.length} layers${cached}${rate})`;
    if (line !== this.lastBytesLine) {
      this.lastBytesLine = line;
      open.task.output = line;
    }
  }

  private begin(label: string): void {
    if (this.open?.label === label) return;
    this.open?.finish();
    let finish!: () => void;
    let fail!: (err: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    const step: OpenStep = { label, task: undefined, finish, fail, startedAt: this.now() };
    this.open = step;
    this.lastBytesLine = '';
    const list = new Listr(
      [
        {
          title: label,
          task: (_ctx, task) => {
            step.task = task as unknown as StepTask;
            return done;
          },
        },
      ],
      { exitOnError: false, registerSignalListeners: false, rendererOptions: { collapseErrors: false } },
    );
    this.chain = this.chain.then(() => list.run().then(() => undefined));
  }

  async close(): Promise<void> {
    this.open?.finish();
    this.open = undefined;
    await this.chain;
  }
}
