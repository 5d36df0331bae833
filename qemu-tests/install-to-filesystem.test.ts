/**
 * qemu tier: `bootc install to-filesystem` (the real CLI) onto a root prepared by hand
 * (ext4, then xfs, each with a FAT ESP on the same disk) boots under OVMF to the autologin
 * shell, root= naming the prepared filesystem, and powers off promptly without running
 * bootc (nothing is staged: the finalize service never started). One boot per disk.
 */
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsLoopDevices } from '../test/support/tier.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, readFixturesIndex } from '../fixtures/paths.js';
import { deploymentId } from '../src/deploy/paths.js';
import { prepareDisk } from '../test/privileged/install/prepared-disk.js';
import { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm } from './harness.js';
import { FINALIZE_ON_CONSOLE } from './shutdown.js';
import { join } from 'node:path';
import { suiteDir, DISK_TMP } from '../test/support/temp-tree.js';

const skip = explainSkip(
  'qemu',
  needsLoopDevices() ??
    needsCommands(QEMU, 'sfdisk', 'mkfs.ext4', 'mkfs.xfs', 'mkfs.fat', 'mcopy', 'blkid', 'findmnt', 'fstrim') ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(fixturesIndexPath, fixturesHint),
);

describe.skipIf(skip)('bootc install to-filesystem: the prepared disk boots under OVMF', () => {
  let tmp: string;
  let id = '';
  const scratch = suiteDir('install-to-filesystem-qemu', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
    id = deploymentId(readFixturesIndex().tags.v1.manifestDigest, 0);
  });

  for (const fsType of ['ext4', 'xfs'] as const) {
    it(`boots an install onto a hand-made ${fsType} root`, async () => {
      const disk = await prepareDisk(tmp, fsType, fsType);
      let uuid: string;
      try {
        uuid = execFileSync('blkid', ['-p', '-o', 'value', '-s', 'UUID', disk.root], { encoding: 'utf8' }).trim();
        const r = await execa(
          'node',
          ['--import', 'tsx', 'src/cli.ts', 'install', 'to-filesystem', disk.mountDir, '--esp', disk.esp,
            '--source-imgref', ociLayoutRef('v1'), '--store', join(tmp, 'store')],
          { reject: false, all: true },
        );
        if (r.exitCode !== 0) throw new Error(`bootc install to-filesystem failed:\n${r.all}`);
      } finally {
        disk.release();
      }
      const vm = await startVm({ name: `install-to-filesystem-${fsType}`, boot: { kind: 'uefi' }, disks: [{ path: disk.file, format: 'raw' }] });
      try {
        await vm.waitForLogin();
        const cmdline = (await vm.runOk('cat /proc/cmdline')).split(/\s+/);
        expect(cmdline).toEqual(expect.arrayContaining([`root=UUID=${uuid}`, 'console=ttyS0,115200', `bootc.deploy=default/${id}`]));
        expect(await vm.runOk('findmnt -n -o FSROOT,FSTYPE /')).toMatch(new RegExp(`^/bootc/deploy/default/${id.replace('.', '\\.')}\\s+${fsType}$`));
        expect(await vm.runOk('findmnt -n -o FSTYPE /boot')).toBe('vfat');
        // A shutdown with nothing staged: bootc does not run, nothing waits on a stop timeout.
        expect(await vm.runOk('systemctl is-active bootc-finalize-staged.path')).toBe('active');
        expect((await vm.run('systemctl is-active bootc-finalize-staged.service')).stdout.trim()).toBe('inactive');
        const from = vm.console.mark();
        const started = Date.now();
        await vm.poweroff(60_000);
        console.log(`${fsType}: poweroff with nothing staged took ${((Date.now() - started) / 1000).toFixed(1)} s`);
        expect(vm.console.text.slice(from)).not.toMatch(FINALIZE_ON_CONSOLE);
      } finally {
        await vm.dispose();
      }
    }, 900_000);
  }
});
