/**
 * qemu tier: one `bootc image build-disk` qcow2 of fixture:v1 (hybrid by default on x86_64)
 * boots under SeaBIOS (no pflash: GRUB from the MBR and the BIOS boot partition, its menu
 * from the ESP), then the same disk under OVMF (systemd-boot), both to the login prompt.
 * Then `bootc install to-disk --via-loopback` into a file, booted under SeaBIOS; and GRUB's
 * boot counting: a default entry on trial is counted down in grubenv by GRUB itself
 * (save_env on the FAT ESP), and with no tries left GRUB boots the rollback entry.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../test/support/tier.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef } from '../fixtures/paths.js';
import { deploymentId } from '../src/deploy/paths.js';
import { diskImageOutputPath } from '../src/disk/disk-image.js';
import { GRUB_I386_PC_ON_HOST } from '../src/boot/grub-bios.js';
import { listBootEntries, readBootEntry, readEspText, writeEspText, type EspLocation } from '../src/boot/esp.js';
import { writeGrubMenu } from '../src/boot/grub-boot.js';
import { GRUBENV_PATH, parseGrubEnv, renderGrubEnv } from '../src/boot/grub-menu.js';
import { MiB } from '../src/disk/gpt.js';
import { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm, type Vm } from './harness.js';

const skip = explainSkip(
  'qemu',
  needsRoot() ??
    needsCommands(QEMU, 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'qemu-img', 'grub-mkimage') ??
    needsFile(join(GRUB_I386_PC_ON_HOST, 'boot.img'), 'install the Debian package grub-pc-bin') ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(fixturesIndexPath, fixturesHint),
);

const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, all: true });

/** A TCG boot to login takes 1-4 minutes on a loaded 2-core machine. */
const BOOT_TIMEOUT_MS = 600_000;

describe.skipIf(skip)('a hybrid build-disk qcow2 boots under SeaBIOS and under OVMF', () => {
  let tmp: string;
  let disk: string;
  let deployment = '';
  let vm: Vm | undefined;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bios-boot-'));
    const output = join(tmp, 'output');
    const r = await execa(
      'node',
      ['--import', 'tsx', 'src/cli.ts', 'image', 'build-disk', ociLayoutRef('v1'), '--type', 'qcow2',
        '--output', output, '--store', join(tmp, 'store'), '--work-dir', tmp],
      { reject: false, all: true },
    );
    if (r.exitCode !== 0) throw new Error(`bootc image build-disk failed:\n${r.all}`);
    deployment = `default/${deploymentId(/^  Digest: (sha256:[0-9a-f]{64})$/m.exec(r.stdout)![1]!, 0)}`;
    disk = diskImageOutputPath(output, 'qcow2');
  });

  afterAll(async () => {
    await vm?.dispose();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('boots under SeaBIOS through GRUB to the login prompt, the deployment as /', async () => {
    vm = await startVm({ name: 'bios-boot-seabios', boot: { kind: 'bios' }, disks: [{ path: disk }] });
    await vm.waitFor(/GNU GRUB|bootc-default-/, 120_000);
    await vm.waitForLogin();
    expect(await vm.runOk('test -d /sys/firmware/efi && echo uefi || echo bios')).toBe('bios');
    expect((await vm.runOk('cat /proc/cmdline')).split(/\s+/)).toContain(`bootc.deploy=${deployment}`);
    expect(await vm.runOk('findmnt -n -o FSROOT /')).toBe(`/bootc/deploy/${deployment}`);
    expect(await vm.runOk('cat /usr/lib/fixture-release')).toBe('1');
    await vm.poweroff();
    await vm.dispose();
    vm = undefined;
  }, BOOT_TIMEOUT_MS);

  it('boots the same disk under OVMF through systemd-boot', async () => {
    await vm?.dispose(); // a failed SeaBIOS boot leaves its VM holding the disk
    vm = await startVm({ name: 'bios-boot-ovmf', boot: { kind: 'uefi' }, disks: [{ path: disk }] });
    await vm.waitForLogin();
    expect(await vm.runOk('test -d /sys/firmware/efi && echo uefi || echo bios')).toBe('uefi');
    expect((await vm.runOk('cat /proc/cmdline')).split(/\s+/)).toContain(`bootc.deploy=${deployment}`);
    expect(await vm.runOk('cat /usr/lib/fixture-release')).toBe('1');
    await vm.poweroff();
  }, BOOT_TIMEOUT_MS);
});

describe.skipIf(skip)('a hybrid install to-disk boots under SeaBIOS', () => {
  let tmp: string;
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('--via-loopback into a file, booted through GRUB', async () => {
    tmp = mkdtempSync('/var/tmp/bios-install-');
    const file = join(tmp, 'disk.raw');
    execFileSync('truncate', ['-s', '4G', file]);
    const r = await cli('install', 'to-disk', '--via-loopback', file, '--source-imgref', ociLayoutRef('v1'), '--store', join(tmp, 'store'));
    if (r.exitCode !== 0) throw new Error(`bootc install to-disk --via-loopback failed:\n${r.all}`);
    const vm = await startVm({ name: 'bios-install-seabios', boot: { kind: 'bios' }, disks: [{ path: file, format: 'raw' }] });
    try {
      await vm.waitFor(/GNU GRUB/, 120_000);
      await vm.waitForLogin();
      expect(await vm.runOk('test -d /sys/firmware/efi && echo uefi || echo bios')).toBe('bios');
      expect((await vm.runOk('cat /proc/cmdline')).split(/\s+/)).toEqual(expect.arrayContaining([expect.stringMatching(/^bootc\.deploy=default\//)]));
      expect(await vm.runOk('cat /usr/lib/fixture-release')).toBe('1');
      // The ESP is /boot (fstab), where the menu and grubenv live for the updates to rewrite.
      // mtools writes 8.3 names without case bits: vfat shows them upper-case (GRUB and Linux match them either way).
      expect(await vm.runOk('ls /boot/grub')).toMatch(/grub\.cfg\s+grubenv/i);
    } finally {
      await vm.dispose();
    }
  }, 900_000);
});

describe.skipIf(skip)("GRUB counts a new default's tries in grubenv and then boots the rollback", () => {
  let tmp: string;
  let esp: EspLocation;
  let trialId = '';
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const bootOnce = async (name: string): Promise<string[]> => {
    const vm = await startVm({ name, boot: { kind: 'bios' }, disks: [{ path: esp.image, format: 'raw' }] });
    try {
      await vm.waitForLogin();
      return (await vm.runOk('cat /proc/cmdline')).split(/\s+/);
    } finally {
      await vm.dispose();
    }
  };

  it('counts down on each boot, with save_env on the ESP', async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bios-count-'));
    const output = join(tmp, 'output');
    const r = await cli('image', 'build-disk', ociLayoutRef('v1'), '--type', 'raw', '--output', output, '--store', join(tmp, 'store'), '--work-dir', tmp);
    if (r.exitCode !== 0) throw new Error(`bootc image build-disk failed:\n${r.all}`);
    // build-disk's layout: the ESP starts at 1 MiB.
    esp = { image: diskImageOutputPath(output, 'raw'), offsetBytes: MiB };
    // A second entry for the same deployment, newer and on trial, told apart by one argument.
    const [original] = await listBootEntries(esp);
    const text = await readBootEntry(esp, original!);
    const id = /^bootc-default-(.+?)(\+\d+)?\.conf$/.exec(original!)![1]!;
    trialId = `bootc-default-${id}t`;
    const trial = text.replace(/^version .*$/m, 'version 2').replace(/^(options .*)$/m, '$1 bootc.test=trial');
    await writeEspText(esp, `loader/entries/${trialId}+3.conf`, trial);
    await writeGrubMenu(esp, { timeoutSeconds: 1 });
    expect(parseGrubEnv(await readEspText(esp, GRUBENV_PATH))).toEqual({ bootc_trial: trialId, bootc_tries: '3' });

    expect(await bootOnce('bios-count-1')).toContain('bootc.test=trial');
    expect(parseGrubEnv(await readEspText(esp, GRUBENV_PATH))).toMatchObject({ bootc_trial: trialId, bootc_tries: '2' });
  }, BOOT_TIMEOUT_MS);

  it('boots the rollback entry once no tries are left', async () => {
    await writeEspText(esp, GRUBENV_PATH, renderGrubEnv({ bootc_trial: trialId, bootc_tries: '0' }));
    const cmdline = await bootOnce('bios-count-2');
    expect(cmdline).not.toContain('bootc.test=trial');
    expect(cmdline).toEqual(expect.arrayContaining([expect.stringMatching(/^bootc\.deploy=default\//)]));
    expect(parseGrubEnv(await readEspText(esp, GRUBENV_PATH))).toMatchObject({ bootc_tries: '0' });
  }, BOOT_TIMEOUT_MS);
});
