/**
 * The one place that turns a failure into output and an exit code.
 *
 *   0   success
 *   1   user error (with a hint) or a failed external command
 *   2   bad command line (unknown flag, missing argument)
 *   70  a bug in bootc (EX_SOFTWARE), always with a stack
 *   130 interrupted (Ctrl-C)
 */
import { BugError, ExternalCommandError, InterruptedError, UserError, unwrapContext } from './errors.js';

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  bug: 70,
  interrupted: 130,
} as const;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface HandlerOptions {
  verbose: boolean;
  write: (text: string) => void;
}

function indent(text: string, prefix = '    '): string {
  return text
    .split('\n')
    .map((l) => prefix + l)
    .join('\n');
}

/** Render `err` for a person and return the process exit code. */
export function reportError(err: unknown, opts: HandlerOptions): number {
  const { steps, root } = unwrapContext(err);
  const where = steps.length > 0 ? steps.join(': ') + ': ' : '';
  const lines: string[] = [];
  let code: number;
  let showStack = opts.verbose;

  if (root instanceof UsageError) {
    lines.push(`error: ${root.message}`);
    lines.push(`hint: run with --help to see the usage`);
    code = EXIT.usage;
    showStack = false;
  } else if (root instanceof UserError) {
    lines.push(`error: ${where}${root.message}`);
    if (root.hint) lines.push(`hint: ${root.hint}`);
    code = EXIT.failure;
  } else if (root instanceof ExternalCommandError) {
    lines.push(`error: ${where}${root.message}`);
    lines.push(`  command: ${root.commandLine}`);
    if (root.stderr.trim() !== '') {
      lines.push('  stderr:');
      lines.push(indent(root.stderr.trimEnd()));
    }
    if (root.hint) lines.push(`hint: ${root.hint}`);
    code = EXIT.failure;
  } else if (root instanceof InterruptedError) {
    lines.push(`error: ${where}${root.message}`);
    code = EXIT.interrupted;
    showStack = false;
  } else {
    const message = root instanceof Error ? root.message : String(root);
    lines.push(`error: ${where}${message}`);
    lines.push(
      root instanceof BugError
        ? 'This is a bug in bootc; please report it with the output above.'
        : 'This is an unexpected error, likely a bug in bootc; please report it with the output above.',
    );
    code = EXIT.bug;
    showStack = true;
  }

  if (showStack && root instanceof Error && root.stack) {
    lines.push(root.stack);
  }
  opts.write(lines.join('\n') + '\n');
  return code;
}
