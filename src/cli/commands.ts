/**
 * The verbs of the CLI. Each entry declares its flags (needed for --help) and imports its
 * implementation only when it runs, so `bootc status` never loads the installer's UI.
 * A verb is listed here only once it works end to end.
 */
import type { Argv, CommandModule } from 'yargs';

export type LazyCommand = CommandModule<object, Record<string, unknown>>;

export const commands: LazyCommand[] = [];

export function registerAll(y: Argv): Argv {
  for (const cmd of commands) y.command(cmd);
  return y;
}
