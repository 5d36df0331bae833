/**
 * Undo steps for work that mounts, attaches or creates things, run when the scope that
 * declared the stack ends (`await using cleanup = new CleanupStack()`), newest first, as
 * AsyncDisposableStack would (Node 20 has none). A step that fails is warned about and the
 * rest still run: cleanup never hides the error that ended the work.
 */
import { warn } from './log.js';

export interface CleanupStep {
  /** Runs the step now, not at the end (e.g. the unmount at the end of a good install); if it fails, the end tries again. */
  runNow(): Promise<void>;
  /** Drops the step: it is no longer needed. */
  cancel(): void;
}

export class CleanupStack implements AsyncDisposable {
  private readonly steps: Array<{ what: string; undo: () => Promise<void>; done: boolean }> = [];

  /** `what` names the step in the warning when it fails, e.g. "unmounting /mnt/x". */
  defer(what: string, undo: () => Promise<void>): CleanupStep {
    const step = { what, undo, done: false };
    this.steps.push(step);
    return {
      runNow: async () => {
        await undo();
        step.done = true;
      },
      cancel: () => {
        step.done = true;
      },
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      if (step.done) continue;
      step.done = true;
      await step.undo().catch((err: unknown) => warn(`cleanup failed, ${step.what}: ${err instanceof Error ? err.message : String(err)}`));
    }
  }
}
