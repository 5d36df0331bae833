/**
 * `make demo` (after `make fixtures`): the main job end to end. `bootc image build-disk`
 * (the real CLI) turns fixture:v1 into a qcow2; qemu boots it under OVMF through
 * systemd-boot, with the serial console shown live up to the autologin shell; then the
 * guest shows the image's release file and that `/` is the bootc deployment.
 *
 *   npx tsx qemu-tests/demo.ts      (as root)
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { fixturesHint, fixturesIndexPath, ociLayoutRef } from '../fixtures/paths.js';
import { needsCommands, needsFile, needsRoot } from '../test/support/tier.js';
import { diskImageOutputPath } from '../src/build-disk/disk-image.js';
import { OVMF_CODE, QEMU, startVm, type Vm } from './harness.js';
import { tempDir, DISK_TMP } from '../test/support/temp-tree.js';

const missing =
  needsRoot() ??
  needsCommands(QEMU, 'setpriv', 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'qemu-img') ??
  needsFile(OVMF_CODE, 'install the Debian package ovmf (make deps)') ??
  needsFile(fixturesIndexPath, fixturesHint);
if (missing) {
  process.stderr.write(`demo: cannot run: ${missing}\n`);
  process.exit(2);
}

const say = (line: string): void => {
  process.stdout.write(`\n\x1b[1m### ${line}\x1b[0m\n`);
};

await using scratch = tempDir('demo', { under: DISK_TMP });
const tmp = scratch.path;
let vm: Vm | undefined;
// The console is shown while the machine boots and shuts down; in between the harness's
// own typing (shell setup, command markers) would only be noise.
let streaming = true;
try {
  const image = ociLayoutRef('v1');
  const output = join(tmp, 'output');
  const argv = ['image', 'build-disk', image, '--type', 'qcow2', '--output', output, '--store', join(tmp, 'store'), '--work-dir', tmp];
  say(`bootc ${argv.join(' ')}`);
  await execa('node', ['dist/cli.js', ...argv], { stdio: 'inherit' });
  const disk = diskImageOutputPath(output, 'qcow2');
  say(`booting ${disk} under qemu with OVMF (TCG, no KVM: about a minute)`);
  const started = Date.now();
  vm = await startVm({
    name: 'demo',
    boot: { kind: 'uefi' },
    disks: [{ path: disk }],
    onConsole: (raw) => {
      if (streaming) process.stdout.write(raw);
    },
  });
  await vm.waitForLogin();
  streaming = false;
  say(`autologin shell after ${Math.round((Date.now() - started) / 1000)} s; console log: ${vm.logPath}`);
  for (const cmd of ['cat /usr/lib/fixture-release', 'findmnt /', 'cat /proc/cmdline']) {
    say(`guest$ ${cmd}`);
    const { stdout, exitCode } = await vm.run(cmd);
    process.stdout.write(`${stdout}\n(exit code ${exitCode})\n`);
  }
  say('powering off');
  streaming = true;
  await vm.poweroff();
  say('VM stopped');
} catch (err) {
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await vm?.dispose();
}
