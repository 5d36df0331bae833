import { describe, expect, it, vi } from 'vitest';
import { ListrSink } from '../../../src/core/progress-terminal.js';
import { Progress } from '../../../src/core/progress.js';

describe('terminal progress (listr2)', () => {
  it('draws each step once and finishes every step on close', async () => {
    const written: string[] = [];
    const spies = [process.stdout, process.stderr].map((s) =>
      vi.spyOn(s, 'write').mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      }),
    );
    try {
      const sink = new ListrSink();
      const p = new Progress([sink]);
      const steps = (current: number) => ({
        type: 'ProgressSteps' as const,
        task: 'build',
        description: 'Building',
        id: 'b',
        stepsCached: 0,
        steps: current,
        stepsTotal: 2,
        subtasks: [
          { subtask: 'a', description: 'Importing image', id: 'a', completed: current > 0 },
          { subtask: 'b', description: 'Writing disk', id: 'b', completed: current > 1 },
        ],
      });
      p.emit(steps(0));
      p.emit(steps(0));
      p.emit(steps(1));
      await p.close();
    } finally {
      for (const s of spies) s.mockRestore();
    }
    // Off a terminal listr2 prints a line when a step starts and one when it is done: each
    // step exactly once of each (the repeated event draws nothing), in order.
    const lines = written.join('').trimEnd().split('\n');
    expect(lines.map((l) => l.replace(/^\S+ /, ''))).toEqual(['Importing image', 'Importing image', 'Writing disk', 'Writing disk']);
    const [started, done] = [lines[0]!.split(' ')[0], lines[1]!.split(' ')[0]];
    expect(started).not.toBe(done);
    expect(lines.map((l) => l.split(' ')[0])).toEqual([started, done, started, done]);
  });
});
