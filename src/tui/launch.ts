/**
 * `bootc install` with no subcommand: the interactive installer, on a terminal only. Ink is
 * loaded from here, after the environment is settled, because it decides when it loads
 * whether it may draw.
 */
import { UsageError } from '../core/handler.js';
import type { InteractiveInstallArgs } from './run.js';

export async function launchInteractiveInstall(args: InteractiveInstallArgs): Promise<void> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new UsageError('bootc install needs a subcommand (to-disk, to-filesystem, print-configuration); the interactive installer needs a terminal');
  }
  // With CI or CONTINUOUS_INTEGRATION set, ink writes only its last frame (meant for build
  // logs): the installer would be a blank screen waiting for keys. A person is at this
  // terminal, so every frame is drawn whatever the environment says.
  delete process.env['CI'];
  delete process.env['CONTINUOUS_INTEGRATION'];
  const { runInteractiveInstall } = await import('./run.js');
  await runInteractiveInstall(args);
}
