/**
 * The verbs of the CLI. Each entry declares its flags (needed for --help) and imports its
 * implementation only when it runs, so `bootc status` never loads the installer's UI.
 * A verb is listed here only once it works end to end.
 */
import type { Argv, CommandModule } from 'yargs';

export type LazyCommand = CommandModule<object, Record<string, unknown>>;

/** `bootc image …` subcommands; other image verbs (e.g. build-disk) join this list. */
export const imageCommands: LazyCommand[] = [
  {
    command: 'inspect <image>',
    describe: 'Show an image\'s manifest digest, config digest, architecture, version, created date and layers',
    builder: (y) =>
      y
        .positional('image', { type: 'string', describe: 'Image reference, e.g. quay.io/example/os:latest or oci:/path/layout:tag' })
        .option('platform', { type: 'string', describe: 'Platform to choose from a multi-arch image (os/arch[/variant]); default: this machine' })
        .option('format', { choices: ['humanreadable', 'json'], default: 'humanreadable', describe: 'Output format' }),
    handler: async (argv) => {
      const { runImageInspect } = await import('./image.js');
      await runImageInspect(argv as unknown as import('./image.js').InspectArgs);
    },
  },
];

export const commands: LazyCommand[] = [
  {
    command: 'image <command>',
    describe: 'Operations on bootable container images',
    builder: (y) => {
      for (const cmd of imageCommands) y.command(cmd);
      return y.demandCommand(1);
    },
    handler: () => undefined,
  },
];

export function registerAll(y: Argv): Argv {
  for (const cmd of commands) y.command(cmd);
  return y;
}
