/**
 * A reboot whose shutdown half is timed: from `systemctl reboot` to the kernel's last word
 * ("reboot: Restarting system", printed at emergency level, so always on the serial
 * console), with the console text of the shutdown to see which units were stopped.
 */
import type { Vm } from './harness.js';

/**
 * bootc-finalize-staged.service on the console while it stops. systemd shortens a status
 * line wider than the console with an ellipsis in the middle ("bootc-finalize-sta…alize the
 * staged bootc deployment."), so the unit name may be cut, and the path unit's line
 * ("bootc-finalize-sta…t") starts the same; only the service's Description= ends in "bootc
 * deployment", and the end of a line is never cut.
 */
export const FINALIZE_ON_CONSOLE = /bootc deployment\.{0,3}\s*$/m;

const RESTARTING = /reboot: Restarting system/;

export async function timedReboot(vm: Vm, loginTimeoutMs: number): Promise<{ ms: number; text: string }> {
  const from = vm.console.mark();
  const started = Date.now();
  vm.console.write('systemctl reboot\n');
  // Generous: a shutdown stuck on a unit's stop timeout (5 min) must still be measured.
  await vm.console.waitFor(RESTARTING, 420_000, { from });
  const ms = Date.now() - started;
  const text = vm.console.text.slice(from);
  await vm.waitForLogin(loginTimeoutMs);
  return { ms, text };
}
