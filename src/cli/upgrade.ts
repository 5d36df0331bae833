/**
 * `bootc upgrade` (alias `update`) `[--tag TAG] [--check] [--apply] [--download-only]
 * [--from-downloaded] [--quiet] [--progress-fd N]`, `bootc switch [--transport T] [--apply] IMAGE` and the hidden
 * `bootc internals finalize-staged` the shutdown unit runs. Thin: flags in, text out.
 */
import { resolve } from 'node:path';
import { run } from '../core/exec.js';
import { UserError } from '../core/errors.js';
import { info, warn } from '../core/log.js';
import { pathExists } from '../core/fs-probe.js';
import { createProgress } from '../core/progress.js';
import { finalizeStaged } from '../updates/finalize.js';
import { upgrade, type UpgradeOptions } from '../updates/upgrade.js';
import { withSignaturePolicy } from '../deploy/origin.js';
import { formatImageName, parseReference } from '../oci/reference.js';
import type { Transport } from '../oci/types.js';
import { DEFAULT_STORE_DIR } from './install.js';

export const SWITCH_TRANSPORTS: readonly string[] = ['registry', 'oci', 'oci-archive', 'docker-archive', 'containers-storage'];

export interface UpgradeArgs {
  check: boolean;
  apply: boolean;
  quiet: boolean;
  downloadOnly?: boolean;
  fromDownloaded?: boolean;
  tag?: string;
  progressFd?: number;
  store?: string;
}

export interface SwitchArgs {
  target: string;
  transport: string;
  apply: boolean;
  retain?: boolean;
  enforceContainerSigpolicy?: boolean;
  quiet: boolean;
  progressFd?: number;
  store?: string;
}

/** Finalises the staged deployment at shutdown (systemd/bootc-finalize-staged.service). */
export const FINALIZE_SERVICE = 'bootc-finalize-staged.service';

/**
 * Its path unit starts the service once the staged record appears; starting it here as well
 * (as ostree does after staging) means a reboot right after, as with --apply, cannot
 * overtake that start and skip the finalisation. Not under systemd (a container): nothing.
 */
async function startFinalizeService(): Promise<void> {
  if (!(await pathExists('/run/systemd/system'))) return;
  await run({ description: `Starting ${FINALIZE_SERVICE}`, argv: ['systemctl', 'start', FINALIZE_SERVICE] }).catch((err: unknown) =>
    warn(`${FINALIZE_SERVICE} was not started now (its path unit starts it): ${err instanceof Error ? err.message : String(err)}`),
  );
}

export async function reboot(): Promise<void> {
  await run({ description: 'Rebooting into the new deployment', argv: ['systemctl', 'reboot'] });
}

export async function runUpgrade(args: UpgradeArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const exclusive = (['check', 'downloadOnly', 'fromDownloaded'] as const).filter((k) => args[k]);
  if (exclusive.length > 1) {
    const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new UserError(`${exclusive.map(flag).join(' and ')} cannot be used together`, {
      hint: 'download with `bootc upgrade --download-only`, then apply it with `bootc upgrade --from-downloaded`',
    });
  }
  if ((args.check || args.downloadOnly) && args.apply) {
    throw new UserError(`${args.check ? '--check' : '--download-only'} and --apply cannot be used together`, {
      hint: args.check ? 'check first with --check, then run `bootc upgrade --apply`' : 'apply a download with `bootc upgrade --from-downloaded --apply`',
    });
  }
  if (args.tag !== undefined && args.fromDownloaded) {
    throw new UserError('--tag and --from-downloaded cannot be used together', {
      hint: '--from-downloaded applies what is staged already; to follow another tag run `bootc upgrade --tag TAG`',
    });
  }
  await stageAndReport(args, out, {
    ...(args.tag !== undefined ? { tag: args.tag } : {}),
    check: args.check,
    downloadOnly: args.downloadOnly ?? false,
    fromDownloaded: args.fromDownloaded ?? false,
    command: ['bootc', 'upgrade', ...process.argv.slice(3)].join(' '),
  });
}

export async function runSwitch(args: SwitchArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const transport = args.transport === 'docker' ? 'registry' : args.transport;
  if (!SWITCH_TRANSPORTS.includes(transport)) {
    throw new UserError(`unknown transport ${JSON.stringify(args.transport)}`, { hint: `use one of: ${SWITCH_TRANSPORTS.join(', ')}` });
  }
  // Parsed now, so a malformed reference fails before the lock and the network.
  const reference = parseReference(args.target, transport as Transport);
  await stageAndReport(args, out, {
    switchTo: withSignaturePolicy({ image: formatImageName(reference), transport: reference.transport }, args.enforceContainerSigpolicy === true),
    retain: args.retain ?? false,
    command: ['bootc', 'switch', ...process.argv.slice(3)].join(' '),
  });
}

async function stageAndReport(
  args: { apply: boolean; quiet: boolean; progressFd?: number; store?: string },
  out: NodeJS.WritableStream,
  request: Omit<UpgradeOptions, 'storeDir' | 'progress'>,
): Promise<void> {
  if (args.progressFd !== undefined && args.progressFd <= 2) {
    throw new UserError(`--progress-fd ${args.progressFd} is stdin, stdout or stderr`, { hint: 'pass a descriptor of 3 or more, e.g. --progress-fd 3 3>progress.jsonl' });
  }
  const progress = await createProgress({ quiet: args.quiet, ...(args.progressFd !== undefined ? { progressFd: args.progressFd } : {}) });
  let outcome;
  try {
    outcome = await upgrade({ ...request, storeDir: resolve(args.store ?? DEFAULT_STORE_DIR), progress });
  } finally {
    await progress.close();
  }
  out.write(outcome.text);
  if (outcome.kind === 'staged' || outcome.kind === 'already-staged') await startFinalizeService();
  if (args.apply && (outcome.kind === 'staged' || outcome.kind === 'already-staged')) await reboot();
}

export async function runFinalizeStaged(): Promise<void> {
  const outcome = await finalizeStaged();
  if (outcome.kind === 'nothing-staged') {
    info('No staged deployment to finalize');
    return;
  }
  if (outcome.kind === 'download-only') return;
  if (outcome.kind === 'locked') {
    warn(`Not finalizing the staged deployment now: ${outcome.why}; the current default boots again`);
    return;
  }
  info(`Staged deployment ${outcome.id} finalized: ${outcome.entryFileName} is the default entry`);
}
