/**
 * The three kinds of failure and how each reads. One top-level handler (src/core/handler.ts)
 * turns them into output and an exit code; nothing else calls process.exit.
 *
 * - UserError: the user can fix it (bad flag, missing image, disk in use). One message and
 *   a hint of the fix; no stack.
 * - ExternalCommandError: a program we ran failed. Carries the command line in a form that
 *   can be pasted into a shell, its exit code and the tail of its stderr.
 * - Anything else is a bug: printed with its stack.
 *
 * Every fallible pipeline step wraps its work in `withContext("Listing device /dev/vda", …)`
 * so an error reads as a path through the pipeline rather than a bare ENOENT.
 */

export interface ErrorDetails {
  hint?: string;
  cause?: unknown;
}

export class UserError extends Error {
  override readonly name = 'UserError';
  readonly hint: string | undefined;
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.hint = details.hint;
  }
}

export interface ExternalCommandFailure {
  description: string;
  commandLine: string;
  exitCode: number | null;
  signal: string | null;
  stderr: string;
  hint?: string;
}

export class ExternalCommandError extends Error {
  override readonly name = 'ExternalCommandError';
  readonly description: string;
  readonly commandLine: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderr: string;
  readonly hint: string | undefined;
  constructor(failure: ExternalCommandFailure) {
    super(ExternalCommandError.summary(failure));
    this.description = failure.description;
    this.commandLine = failure.commandLine;
    this.exitCode = failure.exitCode;
    this.signal = failure.signal;
    this.stderr = failure.stderr;
    this.hint = failure.hint;
  }

  private static summary(f: ExternalCommandFailure): string {
    const how = f.signal !== null ? `was killed by ${f.signal}` : `exited with code ${f.exitCode}`;
    return `${f.description}: command ${how}`;
  }
}

/** A bug: an invariant of our own code was broken. Always printed with a stack. */
export class BugError extends Error {
  override readonly name = 'BugError';
}

/** Raised when the user interrupts (Ctrl-C) so cleanup runs and the exit code is 130. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError';
  constructor(signal: string = 'SIGINT') {
    super(`Interrupted by ${signal}`);
  }
}

/**
 * An error seen through the steps that were running when it happened, outermost first.
 * The original error stays reachable as `inner` so the handler can classify it.
 */
export class ContextError extends Error {
  override readonly name = 'ContextError';
  constructor(
    readonly context: string,
    readonly inner: unknown,
  ) {
    super(`${context}: ${inner instanceof Error ? inner.message : String(inner)}`);
  }
}

/** Run `fn`, and if it fails, say which step failed. */
export async function withContext<T>(context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new ContextError(context, err);
  }
}

/** Synchronous twin of withContext for pure steps (parsers, planners). */
export function withContextSync<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new ContextError(context, err);
  }
}

/** Peel context layers: the list of step names (outermost first) and the root cause. */
export function unwrapContext(err: unknown): { steps: string[]; root: unknown } {
  const steps: string[] = [];
  let current = err;
  while (current instanceof ContextError) {
    steps.push(current.context);
    current = current.inner;
  }
  return { steps, root: current };
}

/** Assert an internal invariant; a failure is a bug, never the user's fault. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new BugError(message);
}
