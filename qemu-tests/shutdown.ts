/**
 * A reboot whose shutdown half is timed: from `systemctl reboot` to the kernel's last word
 * ("reboot: Restarting system", printed at emergency level, so always on the serial
 * console), with the console text of the shutdown to see which units were stopped.
 */
import type { Vm } from './harness.js';

/** The Description= of bootc-finalize-staged.service, as systemd prints it when stopping it. */
export const FINALIZE_UNIT_DESCRIPTION = 'Finalize the staged bootc deployment';

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
