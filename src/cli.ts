#!/usr/bin/env node
/**
 * Entry point: parse the command line, run one verb, and let one handler decide the exit
 * code. Kept thin on purpose; verbs live in src/cli/ and load their code lazily.
 */
import { setFlagsFromString } from 'node:v8';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { registerAll } from './cli/commands.js';
import { EXIT, UsageError, reportError } from './core/handler.js';
import { toolVersion } from './core/version.js';
import { setVerbose } from './core/log.js';
import { InterruptedError } from './core/errors.js';
import { cancellation } from './core/cancel.js';

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  setVerbose(verbose);
  const parser = registerAll(
    yargs(argv)
      .scriptName('bootc')
      .usage('$0 <command> [options]\n\nDeploy and transactionally update an operating system from a bootable container image.')
      .version(toolVersion())
      .option('verbose', { type: 'boolean', describe: 'Show debug output and stacks on errors', global: true })
      .strict()
      .recommendCommands()
      .help()
      .alias('h', 'help')
      .wrap(Math.min(100, process.stdout.columns || 80))
      .exitProcess(false)
      // Throwing stops yargs before the command's handler runs; the handler below reports it.
      .fail((msg, err) => {
        throw err ?? new UsageError(msg);
      }),
  );
  try {
    const parsed = await parser.parseAsync();
    const [verb] = parsed._;
    if (verb === undefined && !argv.some((a) => a === '--help' || a === '-h' || a === '--version')) {
      parser.showHelp();
      return EXIT.usage;
    }
    return EXIT.ok;
  } catch (err) {
    return reportError(err, { verbose, write: (t) => process.stderr.write(t) });
  }
}

function installSignalHandlers(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (!cancellation.signal.aborted) {
        // Let the running operation unwind through its cleanup; it ends in InterruptedError.
        cancellation.abort(signal);
        return;
      }
      process.exitCode = reportError(new InterruptedError(signal), {
        verbose: false,
        write: (t) => process.stderr.write(t),
      });
      process.exit();
    });
  }
}

/**
 * V8 lets the heap grow, between full collections, to up to four times what the last one
 * left alive. An import or a deployment makes garbage faster than that collects it: on the
 * generated 60-layer image (bench/build-disk.ts --image large), build-disk's heap held
 * 150 MiB of which about 40 MiB were alive, and the process peaked at 287–318 MiB (4 runs,
 * 88–95 s). Growing by a quarter peaked at 175–178 MiB (3 runs, 91–105 s, in turns: within
 * the machine's noise). `--optimize-for-size` peaked lower still but took 20% longer. This
 * flag is read at each collection, so setting it here, before any real work, applies to
 * the whole run (unlike the young generation's size, fixed when the heap was made).
 */
function keepHeapNearLiveSize(): void {
  setFlagsFromString('--heap-growing-percent=25');
}

keepHeapNearLiveSize();
installSignalHandlers();
// A promise, not a top-level await: the single executable is one CommonJS script
// (scripts/build-dist.mjs), where top-level await cannot be.
void main(hideBin(process.argv)).then((code) => {
  process.exitCode = code;
});
