/**
 * `bootc upgrade [--check] [--apply] [--quiet] [--progress-fd N]` and the hidden
 * `bootc internals finalize-staged` the shutdown unit runs. Thin: flags in, text out.
 */
import { resolve } from 'node:path';
import { run } from '../core/exec.js';
import { UserError } from '../core/errors.js';
import { info } from '../core/log.js';
import { createProgress } from '../core/progress.js';
import { finalizeStaged } from '../updates/finalize.js';
import { upgrade } from '../updates/upgrade.js';
import { DEFAULT_STORE_DIR } from './install.js';

export interface UpgradeArgs {
  check: boolean;
  apply: boolean;
  quiet: boolean;
  progressFd?: number;
  store?: string;
}

export async function reboot(): Promise<void> {
  await run({ description: 'Rebooting into the new deployment', argv: ['systemctl', 'reboot'] });
}

export async function runUpgrade(args: UpgradeArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (args.check && args.apply) {
    throw new UserError('--check and --apply cannot be used together', { hint: 'check first with --check, then run `bootc upgrade --apply`' });
  }
  if (args.progressFd !== undefined && args.progressFd <= 2) {
    throw new UserError(`--progress-fd ${args.progressFd} is stdin, stdout or stderr`, { hint: 'pass a descriptor of 3 or more, e.g. --progress-fd 3 3>progress.jsonl' });
  }
  const progress = await createProgress({ quiet: args.quiet, ...(args.progressFd !== undefined ? { progressFd: args.progressFd } : {}) });
  let outcome;
  try {
    outcome = await upgrade({
      check: args.check,
      storeDir: resolve(args.store ?? DEFAULT_STORE_DIR),
      progress,
      command: ['bootc', 'upgrade', ...process.argv.slice(3)].join(' '),
    });
  } finally {
    await progress.close();
  }
  out.write(outcome.text);
  if (args.apply && outcome.kind === 'staged') await reboot();
}

export async function runFinalizeStaged(): Promise<void> {
  const outcome = await finalizeStaged();
  if (outcome.kind === 'nothing-staged') {
    info('No staged deployment to finalize');
    return;
  }
  info(`Staged deployment ${outcome.id} finalized: ${outcome.entryFileName} is the default entry`);
}
