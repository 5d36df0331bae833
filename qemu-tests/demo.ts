/**
 * `make demo` (after `make fixtures`): boots fixture:v1 under qemu with its own kernel and
 * initramfs, shows the serial console live up to the autologin shell, reads the image's
 * release file over the console, and powers the VM off.
 *
 *   npx tsx qemu-tests/demo.ts      (as root: the v1 rootfs is root-owned)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesHint, v1Initramfs, v1Kernel, v1RootfsDir } from '../fixtures/paths.js';
import { needsCommands, needsFile, needsRoot } from '../test/support/tier.js';
import { QEMU, startVm, type Vm } from './harness.js';
import { buildV1RootDisk, v1DirectBootOptions } from './fixture-boot.js';

const missing =
  needsRoot() ??
  needsCommands(QEMU, 'mkfs.ext4', 'setpriv') ??
  needsFile(v1Kernel, fixturesHint) ??
  needsFile(v1Initramfs, fixturesHint) ??
  needsFile(v1RootfsDir, fixturesHint);
if (missing) {
  process.stderr.write(`demo: cannot run: ${missing}\n`);
  process.exit(2);
}

const say = (line: string): void => {
  process.stdout.write(`\n\x1b[1m### ${line}\x1b[0m\n`);
};

const tmp = mkdtempSync(join(tmpdir(), 'bootc-demo-'));
let vm: Vm | undefined;
// The console is shown while the machine boots and shuts down; in between the harness's
// own typing (shell setup, command markers) would only be noise.
let streaming = true;
try {
  say('building an ext4 root disk from the fixture:v1 rootfs (mkfs.ext4 -d)');
  const disk = await buildV1RootDisk(join(tmp, 'root.img'));
  say('booting fixture:v1 under qemu (TCG, no KVM: about a minute)');
  const started = Date.now();
  vm = await startVm({
    ...v1DirectBootOptions(disk, 'demo'),
    onConsole: (raw) => {
      if (streaming) process.stdout.write(raw);
    },
  });
  await vm.waitForLogin();
  streaming = false;
  say(`autologin shell after ${Math.round((Date.now() - started) / 1000)} s; console log: ${vm.logPath}`);
  say('running `cat /usr/lib/fixture-release` in the guest over the serial console');
  const { stdout, exitCode } = await vm.run('cat /usr/lib/fixture-release');
  process.stdout.write(`${stdout}\n(exit code ${exitCode})\n`);
  say('powering off');
  streaming = true;
  await vm.poweroff();
  say('VM stopped');
} catch (err) {
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await vm?.dispose();
  rmSync(tmp, { recursive: true, force: true });
}
