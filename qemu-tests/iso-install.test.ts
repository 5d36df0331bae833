/**
 * qemu tier: the installer ISO (`bootc image build-disk --type iso`), built by the single
 * executable (dist/bootc) from images derived with podman, booted under OVMF:
 *
 *   1. the ISO as a CD-ROM beside a blank 8 GB virtio disk: the installer starts on the
 *      serial console by itself; the CD-ROM is listed but refused; Esc at the confirmation
 *      leaves the disk byte-for-byte unchanged; then an install, which ends offering reboot
 *   2. that disk holds a GPT with an ESP carrying a boot entry, and a root partition
 *      (read on the host: the boot below covers the same install path)
 *   3. an unattended ISO (--installer-answers; built together with a raw disk in one run):
 *      installs with no input and powers off; the disk boots alone with the answers' host
 *      name into the image: /usr read-only, /etc writable, `bootc status` naming the
 *      reference the medium was built with, and no installer
 *   4. the same kind of unattended ISO, of an image with a full kernel, written as a USB
 *      stick (hybrid) into a machine with no other disk: it boots, the answers match no
 *      disk (the stick is the medium), the reason is on the console, nothing is written,
 *      and the interactive installer starts, listing the stick as refused. A full kernel's
 *      live boot and a third ISO take minutes: `make soak` runs it (BOOTC_TEST_ISO_USB=1),
 *      `make test` says it skipped it
 *
 * Images: "fx" is fixture:v1 (cloud kernel: quick to boot, no USB drivers) plus fdisk,
 * dosfstools and mtools, which the installer runs; "base" is localhost/debian-bootc:12 (full kernel)
 * with the fixtures' root autologin on the serial console.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, statSync, truncateSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsImage, needsRoot } from '../test/support/tier.js';
import { fixturesHint, fixturesIndexPath } from '../fixtures/paths.js';
import { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm, type Vm } from './harness.js';
import { suiteDir, DISK_TMP } from '../test/support/temp-tree.js';

const repo = process.cwd();
const BOOTC = join(repo, 'dist', 'bootc');
const FX_IMAGE = 'localhost/iso-test-fx:latest';
const BASE_IMAGE = 'localhost/iso-test-base:latest';
/** What installed systems follow: the registry the guest would reach (never contacted here). */
const TARGET = '10.0.2.100:5000/iso-test:latest';
const UNATTENDED_HOSTNAME = 'iso-unattended';
const DISK_BYTES = 8 * 1024 ** 3;
/** A live boot, then pull + install of a 200 MB image, all under TCG on a loaded host. */
const INSTALL_TIMEOUT_MS = 900_000;
const LIVE_BOOT_TIMEOUT_MS = 420_000;

const skip = explainSkip(
  'qemu',
  needsRoot() ??
    needsCommands(QEMU, 'podman', 'xorriso', 'mksquashfs', 'mcopy', 'mkfs.fat') ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(BOOTC, 'build the single executable with `make dist`') ??
    needsFile(fixturesIndexPath, fixturesHint) ??
    needsImage('localhost/debian-bootc:12', 'make base-image'),
);

let tmp = '';
const iso = { fx: '', unattended: '', base: '' };
const usbStickSkip = explainSkip(
  'qemu',
  process.env['BOOTC_TEST_ISO_USB'] === '1' ? null : 'the installer ISO as a USB stick (a full kernel\'s live boot) runs in `make soak`; BOOTC_TEST_ISO_USB=1 runs it here',
);

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function blankDisk(name: string): string {
  const path = join(tmp, name);
  writeFileSync(path, '');
  truncateSync(path, DISK_BYTES);
  return path;
}

/** `podman build` of a two-line Containerfile on `from` (chroot isolation, as this host needs). */
async function buildImage(tag: string, lines: string[], context: string): Promise<void> {
  mkdirSync(context, { recursive: true });
  writeFileSync(join(context, 'Containerfile'), lines.join('\n') + '\n');
  await execa('podman', ['build', '--isolation', 'chroot', '-t', tag, context], { stdio: 'inherit' });
}

async function buildIso(image: string, out: string, extra: string[] = []): Promise<string> {
  await execa(BOOTC, ['image', 'build-disk', '--type', 'iso', '--quiet', '--target-imgref', TARGET, '--output', out, ...extra, `containers-storage:${image}`], {
    stdio: 'inherit',
  });
  return join(out, 'bootiso', 'install.iso');
}

/** The ISO as a CD-ROM on virtio-scsi (the fixture's cloud kernel has no AHCI), booted first. */
const cdrom = (path: string): string[] => [
  '-device', 'virtio-scsi-pci,id=scsi0',
  '-drive', `if=none,id=cd0,file=${path},format=raw,media=cdrom,readonly=on`,
  '-device', 'scsi-cd,drive=cd0,bootindex=0',
];
/** The ISO written raw to a USB stick: a usb-storage disk on xHCI, booted first. */
const usbStick = (path: string): string[] => [
  '-device', 'qemu-xhci,id=xhci',
  '-drive', `if=none,id=stick,file=${path},format=raw,readonly=on`,
  '-device', 'usb-storage,bus=xhci.0,drive=stick,bootindex=0',
];

const key = (vm: Vm, text: string): void => vm.console.write(text);
/**
 * A screen is drawn before its key handlers are bound (and under TCG that gap is long):
 * wait a moment after the screen showed, then press `text`; pressed again if the next screen
 * (`next`) has not come in a while, which only happens when the first press was lost.
 */
async function press(vm: Vm, text: string, next: RegExp, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    key(vm, text);
    try {
      return (await vm.waitFor(next, Math.min(30_000, Math.max(1000, deadline - Date.now()))))[0];
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
  }
}
const ENTER = '\r';
const ESC = '\x1b';

async function until(vm: Vm, pattern: RegExp, timeoutMs = 120_000): Promise<string> {
  return (await vm.waitFor(pattern, timeoutMs))[0];
}

/** From the image screen to the confirmation, taking every default: the medium's image, /dev/vda. */
async function walkToConfirmation(vm: Vm): Promise<void> {
  await until(vm, /1\/5 Image[\s\S]*bootc\/image {2}\(default\)[\s\S]*Up\/Down choose/, LIVE_BOOT_TIMEOUT_MS);
  // The image is pulled from the medium into the store before the disks are listed.
  await press(vm, ENTER, /Reading oci:|2\/5 Disk/);
  await until(vm, /2\/5 Disk[\s\S]*> \/dev\/vda[\s\S]*Up\/Down choose/, 300_000);
  await press(vm, ENTER, /3\/5 Options/);
  await press(vm, ENTER, /4\/5 Plan[\s\S]*updates from: 10\.0\.2\.100:5000\/iso-test:latest/);
  await press(vm, ENTER, /5\/5 Confirm/);
}

describe.skipIf(skip)('installer ISO (qemu)', () => {
  const scratch = suiteDir('iso', { under: DISK_TMP });
  beforeAll(async () => {
    tmp = scratch.path;
    const autologin = join(repo, 'fixtures/base/overlay/etc/systemd/system/serial-getty@ttyS0.service.d');
    await buildImage(FX_IMAGE, ['FROM localhost/fixture:v1', 'RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fdisk dosfstools mtools && rm -rf /var/lib/apt/lists/*'], join(tmp, 'fx'));
    iso.fx = await buildIso(FX_IMAGE, join(tmp, 'out-fx'));
    const answers = join(tmp, 'answers.toml');
    writeFileSync(answers, `[disk]\nsize = "largest"\nwipe = true\n\n[options]\nhostname = "${UNATTENDED_HOSTNAME}"\n`);
    // With another type in the same run: one pull, one staged deployment, both outputs.
    iso.unattended = await buildIso(FX_IMAGE, join(tmp, 'out-unattended'), ['--installer-answers', answers, '--type', 'raw']);
    expect(statSync(join(tmp, 'out-unattended', 'image', 'disk.raw')).size).toBeGreaterThan(0);
    if (!usbStickSkip) {
      const baseContext = join(tmp, 'base');
      cpSync(autologin, join(baseContext, 'autologin'), { recursive: true });
      await buildImage(BASE_IMAGE, ['FROM localhost/debian-bootc:12', 'COPY autologin/ /etc/systemd/system/serial-getty@ttyS0.service.d/'], baseContext);
      iso.base = await buildIso(BASE_IMAGE, join(tmp, 'out-base'), ['--installer-answers', answers]);
    }
  }, 900_000);

  afterAll(async () => {
    await execa('podman', ['rmi', '-f', FX_IMAGE, BASE_IMAGE], { reject: false });
  });

  let interactiveDisk = '';

  it('CD-ROM: the installer starts on the serial console, refuses the CD-ROM, cancels without a write, installs and offers reboot', async () => {
    interactiveDisk = blankDisk('interactive.raw');
    const blank = await sha256(interactiveDisk);
    const vm = await startVm({ name: 'iso-cdrom', boot: { kind: 'uefi' }, disks: [{ path: interactiveDisk }], extraArgs: cdrom(iso.fx) });
    try {
      await walkToConfirmation(vm);
      // The CD-ROM was listed, refused as the medium (the disk screen showed it IN USE).
      expect(vm.console.text).toMatch(/\/dev\/sr0 .*iso9660 +IN USE/);
      await press(vm, ESC, /The installer has ended/);
      expect(await sha256(interactiveDisk)).toBe(blank);

      await press(vm, ENTER, /1\/5 Image/);
      await walkToConfirmation(vm);
      await new Promise((r) => setTimeout(r, 2000));
      key(vm, 'vda');
      await press(vm, ENTER, /Installing to \/dev\/vda/);
      await until(vm, /Installed to \/dev\/vda[\s\S]*r reboot now/, INSTALL_TIMEOUT_MS);
      await press(vm, 'q', /The installer has ended/);
      await new Promise((r) => setTimeout(r, 1000));
      key(vm, 'p' + ENTER);
      await Promise.race([vm.exited, new Promise((_, reject) => setTimeout(() => reject(new Error('the live system did not power off')), 120_000))]);
    } finally {
      await vm.dispose();
    }
  }, INSTALL_TIMEOUT_MS + 2 * LIVE_BOOT_TIMEOUT_MS);

  it('the interactive install left an ESP with a boot entry and a root partition (its boot is the unattended disk\'s below: same install path)', () => {
    expect(interactiveDisk).not.toBe('');
    const table = JSON.parse(execFileSync('sfdisk', ['--json', interactiveDisk], { encoding: 'utf8' })) as {
      partitiontable: { label: string; partitions: Array<{ start: number; type: string }> };
    };
    expect(table.partitiontable.label).toBe('gpt');
    const esp = table.partitiontable.partitions.find((p) => p.type.toUpperCase() === 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
    expect(esp).toBeDefined();
    expect(table.partitiontable.partitions.length).toBeGreaterThanOrEqual(2);
    const entries = execFileSync('mdir', ['-b', '-i', `${interactiveDisk}@@${esp!.start * 512}`, '::/loader/entries'], { encoding: 'utf8' });
    expect(entries).toMatch(/\.conf/);
  });

  it('unattended ISO: installs onto the disk the answers select with no input, powers off; the disk boots alone into the image: /usr read-only, /etc writable, status names the image, no installer', async () => {
    const disk = blankDisk('unattended.raw');
    const live = await startVm({ name: 'iso-unattended', boot: { kind: 'uefi' }, disks: [{ path: disk }], extraArgs: cdrom(iso.unattended) });
    try {
      await until(live, /the unattended install is complete/, INSTALL_TIMEOUT_MS);
      await Promise.race([live.exited, new Promise((_, reject) => setTimeout(() => reject(new Error('the live system did not power off')), 180_000))]);
    } finally {
      await live.dispose();
    }
    const vm = await startVm({ name: 'iso-unattended-installed', boot: { kind: 'uefi' }, disks: [{ path: disk }] });
    try {
      await vm.waitForLogin();
      expect(await vm.runOk('hostname')).toBe(UNATTENDED_HOSTNAME);
      const status = JSON.parse(await vm.runOk('bootc status --format json')) as { spec: { image: { image: string } }; status: { booted: unknown } };
      expect(status.spec.image.image).toBe(TARGET);
      expect(status.status.booted).not.toBeNull();
      expect((await vm.run('touch /usr/bootc-iso-test')).exitCode).not.toBe(0);
      await vm.runOk('touch /etc/bootc-iso-test && rm /etc/bootc-iso-test');
      expect(await vm.runOk('test -e /usr/lib/bootc/live/installer.sh && echo live || echo installed')).toBe('installed');
      expect(await vm.runOk('findmnt -n -o FSTYPE /')).not.toBe('overlay');
      await vm.poweroff();
    } finally {
      await vm.dispose();
    }
  }, INSTALL_TIMEOUT_MS + 2 * LIVE_BOOT_TIMEOUT_MS);

  it.skipIf(usbStickSkip)('USB stick (hybrid): boots an image with USB drivers; no disk matches the answers, so the reason, no write, and the installer', async () => {
    const vm = await startVm({ name: 'iso-usb-nodisk', boot: { kind: 'uefi' }, disks: [], extraArgs: usbStick(iso.base) });
    try {
      await until(vm, /no disk matches the largest disk: every disk is in use or holds the install medium/, LIVE_BOOT_TIMEOUT_MS);
      await until(vm, /the unattended install stopped/);
      await until(vm, /1\/5 Image[\s\S]*bootc\/image {2}\(default\)[\s\S]*Up\/Down choose/, 180_000);
      await press(vm, ENTER, /Reading oci:|2\/5 Disk/);
      await until(vm, /2\/5 Disk[\s\S]*Up\/Down choose/, 600_000);
      expect(vm.console.text).toMatch(/\/dev\/sda .*IN USE/);
    } finally {
      await vm.dispose();
    }
  }, LIVE_BOOT_TIMEOUT_MS + 900_000);
});
