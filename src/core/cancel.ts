/**
 * Ctrl-C handling. The first SIGINT/SIGTERM aborts `cancellation.signal`: long operations
 * check it between steps and unwind through their cleanup (unmount, detach, remove temp
 * files), then the handler exits 130. A second signal exits at once.
 */
import { InterruptedError } from './errors.js';

const controller = new AbortController();

export const cancellation = {
  get signal(): AbortSignal {
    return controller.signal;
  },
  /** Throw InterruptedError if the user asked us to stop. Call between steps. */
  check(): void {
    if (controller.signal.aborted) throw new InterruptedError(String(controller.signal.reason ?? 'SIGINT'));
  },
  abort(signal: string): void {
    controller.abort(signal);
  },
};
