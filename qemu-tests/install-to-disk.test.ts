/**
 * qemu tier: `bootc install to-disk` (the real CLI) writes fixture:v1 onto a loop device,
 * and `--via-loopback` into a plain file (hybrid disks, as on x86_64 by default); the first
 * boots under OVMF through systemd-boot, the second under SeaBIOS through GRUB and then
 * under OVMF, each to the autologin shell. The first with the install config's kargs, the
 * image's kargs.d and --karg on the command line, the ESP mounted at /boot from fstab,
 * root's SSH key from tmpfiles.d, and `bootc status` (the image's own CLI) showing the
 * booted image and digest.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsLoopDevices } from '../test/support/tier.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, readFixturesIndex, v1RootfsDir } from '../fixtures/paths.js';
import { deploymentId } from '../src/deploy/paths.js';
import { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm, type Vm } from './harness.js';
import { suiteDir, DISK_TMP } from '../test/support/temp-tree.js';

const skip = explainSkip(
  'qemu',
  needsLoopDevices() ??
    needsCommands(QEMU, 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'blkid', 'wipefs', 'fstrim', 'grub-mkimage') ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(fixturesIndexPath, fixturesHint),
);
// The image carries the CLI as it was when the fixtures were built.
const skipGuestStatus = explainSkip(
  'qemu',
  needsFile(join(v1RootfsDir, 'usr/bin/bootc'), 'the fixture image has no tool layer: rebuild the fixtures (`make fixtures`)'),
);

const HOST_CONFIG_DIR = '/run/bootc/install';
const HOST_CONFIG = join(HOST_CONFIG_DIR, '99-bootc-ts-qemu-test.toml');
const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOnlyForTests root@test';

const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, all: true });

describe.skipIf(skip)('bootc install to-disk: the installed disk boots under OVMF', () => {
  let tmp: string;
  let id = '';
  let digest = '';
  const scratch = suiteDir('install-to-disk', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
    digest = readFixturesIndex().tags.v1.manifestDigest;
    id = deploymentId(digest, 0);
    writeFileSync(join(tmp, 'keys'), SSH_KEY + '\n');
  });
  afterAll(() => {
    rmSync(HOST_CONFIG, { force: true });
  });

  describe('to-disk onto a loop device', () => {
    let vm: Vm | undefined;
    const guest = (): Vm => {
      if (!vm) throw new Error('the VM did not start');
      return vm;
    };
    beforeAll(async () => {
      const file = join(tmp, 'loop.raw');
      execFileSync('truncate', ['-s', '4G', file]);
      // The host's /run/bootc/install is honoured (after the image's own files).
      mkdirSync(HOST_CONFIG_DIR, { recursive: true });
      writeFileSync(HOST_CONFIG, '[install]\nkargs = ["bootc.config=yes"]\nkarg-deletes = ["bootc.never"]\n');
      const loop = execFileSync('losetup', ['--find', '--show', '--partscan', file], { encoding: 'utf8' }).trim();
      let r;
      try {
        r = await cli('install', 'to-disk', loop, '--source-imgref', ociLayoutRef('v1'), '--store', join(tmp, 'store'),
          '--karg', 'bootc.test=yes', '--karg', 'bootc.never', '--root-ssh-authorized-keys', join(tmp, 'keys'));
      } finally {
        execFileSync('losetup', ['--detach', loop]);
        rmSync(HOST_CONFIG, { force: true });
      }
      if (r.exitCode !== 0) throw new Error(`bootc install to-disk failed:\n${r.all}`);
      vm = await startVm({ name: 'install-to-disk', boot: { kind: 'uefi' }, disks: [{ path: file, format: 'raw' }] });
      await vm.waitForLogin();
    });
    afterAll(async () => {
      await vm?.dispose();
    });

    it('boots with install-config kargs, then kargs.d, then --karg on /proc/cmdline', async () => {
      const cmdline = (await guest().runOk('cat /proc/cmdline')).split(/\s+/);
      expect(cmdline).toEqual(expect.arrayContaining(['console=ttyS0,115200', 'bootc.config=yes', 'bootc.test=yes', `bootc.deploy=default/${id}`]));
      // --karg comes after karg-deletes, so the CLI wins over the config's delete.
      expect(cmdline).toContain('bootc.never');
      expect(cmdline.indexOf('bootc.config=yes')).toBeLessThan(cmdline.indexOf('console=ttyS0,115200'));
      expect(cmdline.indexOf('console=ttyS0,115200')).toBeLessThan(cmdline.indexOf('bootc.test=yes'));
    });

    it('has the deployment as / and the ESP at /boot from fstab', async () => {
      expect(await guest().runOk('findmnt -n -o FSROOT /')).toBe(`/bootc/deploy/default/${id}`);
      expect(await guest().runOk('findmnt -n -o FSTYPE /boot')).toBe('vfat');
      expect(await guest().runOk('ls /boot/loader/entries')).toMatch(new RegExp(`bootc-default-${id.replace('.', '\\.')}`));
    });

    it('installed root\'s SSH key and the install record', async () => {
      expect(await guest().runOk('cat /root/.ssh/authorized_keys')).toBe(SSH_KEY);
      expect(await guest().runOk('stat -c "%U %a" /var/roothome/.ssh/authorized_keys')).toBe('root 600');
      expect(JSON.parse(await guest().runOk('cat /sysroot/.bootc-aleph.json'))).toMatchObject({ digest });
    });

    it.skipIf(skipGuestStatus)('bootc status in the guest shows the booted image and digest', async () => {
      const host = JSON.parse(await guest().runOk('bootc status --format json')) as { status: { booted: { image: { image: unknown; imageDigest: string } } } };
      expect(host.status.booted.image.imageDigest).toBe(digest);
      expect(host.status.booted.image.image).toEqual({ image: ociLayoutRef('v1').slice('oci:'.length), transport: 'oci' });
      expect(await guest().runOk('bootc status --format humanreadable')).toContain(`Digest: ${digest}`);
    });
  });

  it('--via-loopback into a plain file: a hybrid disk that boots under SeaBIOS through GRUB, then under OVMF', async () => {
    const file = join(tmp, 'via-loopback.raw');
    execFileSync('truncate', ['-s', '4G', file]);
    const r = await cli('install', 'to-disk', '--via-loopback', file, '--source-imgref', ociLayoutRef('v1'), '--store', join(tmp, 'store'));
    if (r.exitCode !== 0) throw new Error(`bootc install to-disk --via-loopback failed:\n${r.all}`);
    expect(execFileSync('losetup', ['-j', file], { encoding: 'utf8' })).toBe('');
    for (const firmware of ['bios', 'uefi'] as const) {
      const vm = await startVm({ name: `install-via-loopback-${firmware}`, boot: { kind: firmware }, disks: [{ path: file, format: 'raw' }] });
      try {
        await vm.waitForLogin();
        expect(await vm.runOk('test -d /sys/firmware/efi && echo uefi || echo bios')).toBe(firmware);
        const cmdline = (await vm.runOk('cat /proc/cmdline')).split(/\s+/);
        // GRUB adds BOOT_IMAGE=; systemd-boot does not.
        expect(cmdline.some((a) => a.startsWith('BOOT_IMAGE='))).toBe(firmware === 'bios');
        expect(cmdline).toEqual(expect.arrayContaining(['console=ttyS0,115200', `bootc.deploy=default/${id}`]));
        expect(await vm.runOk('cat /usr/lib/fixture-release')).toBe('1');
        expect(await vm.runOk('findmnt -n -o FSTYPE /')).toBe('ext4');
        await vm.poweroff();
      } finally {
        await vm.dispose();
      }
    }
  }, 1_500_000);
});
