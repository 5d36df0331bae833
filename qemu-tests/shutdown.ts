/**
 * A reboot whose shutdown half is timed: from `systemctl reboot` to the kernel's last word
 * ("reboot: Restarting system", printed at emergency level, so always on the serial
 * console), with the console text of the shutdown to see which units were stopped.
 */
import type { Vm } from './harness.js';

/**
 * bootc-finalize-staged.service on the console while it stops. systemd shortens a status
 * line wider than the console with an ellipsis in the middle ("bootc-finalize-sta…alize the
 * staged bootc deployment."), and where it cuts depends on the line: seen here both whole
 * and cut, so either end of the line counts.
 */
export const FINALIZE_ON_CONSOLE = /Finalize the staged bootc deployment|bootc-finalize-sta|alize the staged bootc deployment/;

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
