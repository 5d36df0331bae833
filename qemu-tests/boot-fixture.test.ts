/**
 * qemu tier: fixture:v1 boots (its own kernel and initramfs, root on a virtio disk) to the
 * autologin shell, and the harness runs commands there over the serial console.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../test/support/tier.js';
import { fixturesHint, v1Initramfs, v1Kernel, v1RootfsDir } from '../fixtures/paths.js';
import { QEMU, startVm, type Vm } from './harness.js';
import { buildV1RootDisk, v1DirectBootOptions } from './fixture-boot.js';
import { suiteDir } from '../test/support/temp-tree.js';

const skip = explainSkip(
  'qemu',
  needsRoot() ??
    needsCommands(QEMU, 'mkfs.ext4', 'setpriv') ??
    needsFile(v1Kernel, fixturesHint) ??
    needsFile(v1Initramfs, fixturesHint) ??
    needsFile(join(v1RootfsDir, 'usr/lib/fixture-release'), fixturesHint),
);

describe.skipIf(skip)('fixture:v1 under qemu, direct kernel boot', () => {
  let tmp: string;
  let vm: Vm | undefined;

  const scratch = suiteDir('boot-fixture');
  beforeAll(async () => {
    tmp = scratch.path;
    const disk = await buildV1RootDisk(join(tmp, 'root.img'));
    vm = await startVm(v1DirectBootOptions(disk, 'boot-fixture'));
    await vm.waitForLogin();
  });

  afterAll(async () => {
    await vm?.dispose();
  });

  const guest = (): Vm => {
    if (!vm) throw new Error('the VM did not start');
    return vm;
  };

  it('reads the image release over the serial console', async () => {
    expect(await guest().run('cat /usr/lib/fixture-release')).toEqual({ stdout: '1', exitCode: 0 });
  });

  it('reports the exit code of a failing command', async () => {
    expect(await guest().run('false')).toEqual({ stdout: '', exitCode: 1 });
  });

  it('returns multi-line output exactly, stderr included', async () => {
    expect(await guest().run("printf 'a\\n\\nb\\n'; echo oops >&2; (exit 3)")).toEqual({
      stdout: 'a\n\nb\noops',
      exitCode: 3,
    });
  });

  it('booted the layout bootc expects', async () => {
    const out = await guest().runOk('readlink /root /usr/local; ls /boot | wc -l; cat /etc/hostname');
    expect(out.split('\n')).toEqual(['var/roothome', '../var/usrlocal', '0', 'fixture']);
  });

  it("runs the image's own bootc CLI on the image's node", async () => {
    const { exitCode, stdout } = await guest().run('bootc --version', 120_000);
    expect({ exitCode, stdout: stdout.trim().length > 0 }).toEqual({ exitCode: 0, stdout: true });
  }, 150_000);
});
