import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { JsonLinesSink, PlainLinesSink, Progress, openProgressFd, type BytesEvent } from '../../../src/core/progress.js';
import { UserError } from '../../../src/core/errors.js';

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (d: Buffer) => (buf += d.toString()));
  return { stream, text: () => buf };
}

function bytes(done: number, total = 100, id = 'sha256:aaa'): BytesEvent {
  return {
    type: 'ProgressBytes',
    task: 'pulling',
    description: 'Pulling image',
    id: 'img',
    bytesCached: 0,
    bytes: done,
    bytesTotal: total,
    stepsCached: 0,
    steps: 0,
    stepsTotal: 1,
    subtasks: [{ subtask: 'layer', description: `Layer ${id}`, id, bytesCached: 0, bytes: done, bytesTotal: total }],
  };
}

describe('progress events', () => {
  it('JSON lines: one object per line, byte updates limited to 5/s, final update always sent', () => {
    const { stream, text } = collect();
    let t = 0;
    const sink = new JsonLinesSink(stream, () => t);
    const p = new Progress([sink]);
    p.start();
    p.emit(bytes(10));
    t = 50;
    p.emit(bytes(20)); // dropped: within 200 ms
    t = 250;
    p.emit(bytes(30));
    t = 260;
    p.emit(bytes(100)); // final: never dropped
    const lines = text().trim().split('\n').map((l) => JSON.parse(l) as { type: string; bytes?: number });
    expect(lines.map((l) => l.type)).toEqual(['Start', 'ProgressBytes', 'ProgressBytes', 'ProgressBytes']);
    expect(lines.slice(1).map((l) => l.bytes)).toEqual([10, 30, 100]);
  });

  it('plain lines: a line per step and per finished layer', () => {
    const { stream, text } = collect();
    const p = new Progress([new PlainLinesSink(stream, () => 0)]);
    p.emit({
      type: 'ProgressSteps',
      task: 'staging',
      description: 'Staging',
      id: 'x',
      stepsCached: 0,
      steps: 0,
      stepsTotal: 2,
      subtasks: [
        { subtask: 'merging', description: 'Merging image', id: 'm', completed: false },
        { subtask: 'deploying', description: 'Deploying', id: 'd', completed: false },
      ],
    });
    p.emit(bytes(50, 2048));
    p.emit(bytes(2048, 2048));
    p.emit(bytes(2048, 2048));
    expect(text()).toBe('Merging image\nPulling image: 50 B / 2.0 KiB\nLayer sha256:aaa: 2.0 KiB done\n');
  });

  it('refuses --progress-fd 0..2 and closed descriptors', () => {
    expect(() => openProgressFd(1)).toThrow(UserError);
    expect(() => openProgressFd(987)).toThrow(/not open/);
  });
});
