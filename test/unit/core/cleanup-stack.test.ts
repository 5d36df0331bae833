/**
 * The cleanup stack: steps undone newest first when the scope ends, whether it ends well or
 * by an error, which stays the error; a failing step is warned about and the rest still run;
 * a step run early or cancelled is not run again.
 */
import { describe, expect, it, vi } from 'vitest';
import { CleanupStack } from '../../../src/core/cleanup-stack.js';
import * as log from '../../../src/core/log.js';

describe('CleanupStack', () => {
  it('undoes newest first when the scope ends', async () => {
    const done: string[] = [];
    {
      await using cleanup = new CleanupStack();
      cleanup.defer('a', async () => void done.push('a'));
      cleanup.defer('b', async () => void done.push('b'));
      cleanup.defer('c', async () => void done.push('c'));
      expect(done).toEqual([]);
    }
    expect(done).toEqual(['c', 'b', 'a']);
  });

  it('keeps the error that ended the work; a failing step warns and the others still run', async () => {
    const warned = vi.spyOn(log, 'warn').mockImplementation(() => undefined);
    const done: string[] = [];
    const work = async (): Promise<void> => {
      await using cleanup = new CleanupStack();
      cleanup.defer('detaching /dev/loop9', async () => void done.push('detach'));
      cleanup.defer('unmounting /mnt/x', async () => {
        throw new Error('target is busy');
      });
      cleanup.defer('removing /tmp/w', async () => void done.push('rm'));
      throw new Error('the install failed');
    };
    await expect(work()).rejects.toThrow(/^the install failed$/);
    expect(done).toEqual(['rm', 'detach']);
    expect(warned).toHaveBeenCalledTimes(1);
    expect(warned).toHaveBeenCalledWith('cleanup failed, unmounting /mnt/x: target is busy');
    warned.mockRestore();
  });

  it('does not run again a step run early or cancelled; one that failed early is tried again at the end', async () => {
    const runs: string[] = [];
    let fail = true;
    {
      await using cleanup = new CleanupStack();
      const early = cleanup.defer('early', async () => void runs.push('early'));
      const dropped = cleanup.defer('dropped', async () => void runs.push('dropped'));
      const flaky = cleanup.defer('flaky', async () => {
        runs.push('flaky');
        if (fail) throw new Error('busy');
      });
      await early.runNow();
      dropped.cancel();
      await expect(flaky.runNow()).rejects.toThrow('busy');
      fail = false;
    }
    expect(runs).toEqual(['early', 'flaky', 'flaky']);
  });
});
