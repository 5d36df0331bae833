/** The CLI parser as yargs builds it from src/cli/commands.ts, for table tests of flags. */
import yargs from 'yargs';
import type { LazyCommand } from '../../src/cli/commands.js';

/**
 * Parses `argv` (starting with the verb) against one command definition, its handler
 * replaced by one that records its arguments; returns those arguments.
 */
export async function parseWith(cmd: LazyCommand, argv: string[]): Promise<Record<string, unknown>> {
  let got: Record<string, unknown> | undefined;
  await yargs(argv)
    .command({ ...cmd, handler: (a: Record<string, unknown>) => void (got = a) } as LazyCommand)
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
  if (!got) throw new Error(`the handler of ${argv[0]} did not run`);
  return got;
}
