/**
 * qemu tier: `bootc install to-disk` (the real CLI) writes fixture:v1 onto a loop device,
 * and `--via-loopback` into a plain file; each disk boots under OVMF to the autologin
 * shell with the install config's kargs, the image's kargs.d and --karg on the command
 * line, the ESP mounted at /boot from fstab, and root's SSH key from tmpfiles.d.
 * One boot per disk.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsLoopDevices } from '../test/support/tier.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, readFixturesIndex } from '../fixtures/paths.js';
import { deploymentId } from '../src/deploy/paths.js';
import { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm, type Vm } from './harness.js';

const skip = explainSkip(
  'qemu',
  needsLoopDevices() ??
    needsCommands(QEMU, 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'blkid', 'wipefs', 'fstrim') ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(fixturesIndexPath, fixturesHint),
);

const HOST_CONFIG_DIR = '/run/bootc/install';
const HOST_CONFIG = join(HOST_CONFIG_DIR, '99-bootc-ts-qemu-test.toml');
const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOnlyForTests root@test';

const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, all: true });

async function bootAndCheck(name: string, disk: string, extraChecks: (vm: Vm) => Promise<void>): Promise<void> {
  const vm = await startVm({ name, boot: { kind: 'uefi' }, disks: [{ path: disk, format: 'raw' }] });
  try {
    await vm.waitForLogin();
    await extraChecks(vm);
  } finally {
    await vm.dispose();
  }
}

describe.skipIf(skip)('bootc install to-disk: the installed disk boots under OVMF', () => {
  let tmp: string;
  let id = '';
  let digest = '';
  beforeAll(() => {
    tmp = mkdtempSync('/var/tmp/install-to-disk-');
    digest = readFixturesIndex().tags.v1.manifestDigest;
    id = deploymentId(digest, 0);
    writeFileSync(join(tmp, 'keys'), SSH_KEY + '\n');
  });
  afterAll(() => {
    rmSync(HOST_CONFIG, { force: true });
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('to-disk onto a loop device: install config kargs, kargs.d and --karg reach /proc/cmdline', async () => {
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

    await bootAndCheck('install-to-disk', file, async (vm) => {
      const cmdline = (await vm.runOk('cat /proc/cmdline')).split(/\s+/);
      expect(cmdline).toEqual(expect.arrayContaining(['console=ttyS0,115200', 'bootc.config=yes', 'bootc.test=yes', `bootc.deploy=default/${id}`]));
      // --karg comes after karg-deletes, so the CLI wins over the config's delete.
      expect(cmdline).toContain('bootc.never');
      expect(cmdline.indexOf('bootc.config=yes')).toBeLessThan(cmdline.indexOf('console=ttyS0,115200'));
      expect(cmdline.indexOf('console=ttyS0,115200')).toBeLessThan(cmdline.indexOf('bootc.test=yes'));
      expect(await vm.runOk('findmnt -n -o FSROOT /')).toBe(`/bootc/deploy/default/${id}`);
      expect(await vm.runOk('findmnt -n -o FSTYPE /boot')).toBe('vfat');
      expect(await vm.runOk(`ls /boot/loader/entries`)).toMatch(new RegExp(`bootc-default-${id.replace('.', '\\.')}`));
      expect(await vm.runOk('cat /root/.ssh/authorized_keys')).toBe(SSH_KEY);
      expect(await vm.runOk('stat -c "%U %a" /var/roothome/.ssh/authorized_keys')).toBe('root 600');
      expect(JSON.parse(await vm.runOk('cat /sysroot/.bootc-aleph.json'))).toMatchObject({ digest });
    });
  }, 900_000);

  it('--via-loopback into a plain file', async () => {
    const file = join(tmp, 'via-loopback.raw');
    execFileSync('truncate', ['-s', '4G', file]);
    const r = await cli('install', 'to-disk', '--via-loopback', file, '--source-imgref', ociLayoutRef('v1'), '--store', join(tmp, 'store'));
    if (r.exitCode !== 0) throw new Error(`bootc install to-disk --via-loopback failed:\n${r.all}`);
    expect(execFileSync('losetup', ['-j', file], { encoding: 'utf8' })).toBe('');

    await bootAndCheck('install-via-loopback', file, async (vm) => {
      expect((await vm.runOk('cat /proc/cmdline')).split(/\s+/)).toEqual(
        expect.arrayContaining(['console=ttyS0,115200', `bootc.deploy=default/${id}`]),
      );
      expect(await vm.runOk('cat /usr/lib/fixture-release')).toBe('1');
      expect(await vm.runOk('findmnt -n -o FSTYPE /')).toBe('ext4');
    });
  }, 900_000);
});
