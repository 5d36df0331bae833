/**
 * qemu tier: `bootc image build-disk` (the real CLI) turns fixture:v1, minus its kargs.d
 * serial console, plus three generated layers (fixtures/large-image.ts: a many-layer image,
 * small), into a qcow2 that boots under OVMF through systemd-boot. The disk booted is a
 * rebuild: the image is built first, then the image with its last layer changed, with the
 * same --store, so the disk of an incremental build is the one that must boot: the store's
 * kept disk, its root filesystem updated in place (build-disk/previous-disk.ts). The addon
 * initrd makes the deployment the root. The image brings no console argument, so the login
 * prompt on the serial console comes from bib's defaults (console=tty0 console=ttyS0), as
 * with bootc-image-builder. Two boots of the one disk (hybrid, as build-disk makes them on
 * x86_64): the first under OVMF through systemd-boot checks the layout, the config.toml
 * customisations and boot counting; the second under SeaBIOS through GRUB (its menu on the
 * ESP) that /etc and /var kept what was written and the same deployment boots.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../test/support/tier.js';
import { fixturesHint, fixturesIndexPath, v1RootfsDir } from '../fixtures/paths.js';
import { deriveFixtureV1, WITHOUT_FIXTURE_CONSOLE } from '../test/support/derived-fixture.js';
import { deploymentId } from '../src/deploy/paths.js';
import { diskImageOutputPath } from '../src/build-disk/disk-image.js';
import { GRUB_I386_PC_ON_HOST } from '../src/boot/grub-bios.js';
import { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm, type Vm } from './harness.js';
import { suiteDir } from '../test/support/temp-tree.js';
import { largeImage } from '../fixtures/large-image.js';

const STATEROOT = 'default';
let DEPLOYMENT_ID = '';

const skip = explainSkip(
  'qemu',
  needsRoot() ??
    needsCommands(QEMU, 'setpriv', 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'qemu-img', 'grub-mkimage') ??
    needsFile(join(GRUB_I386_PC_ON_HOST, 'boot.img'), 'install the Debian package grub-pc-bin') ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(join(v1RootfsDir, 'usr/lib/fixture-release'), fixturesHint) ??
    needsFile(fixturesIndexPath, fixturesHint),
);

const ENTRIES = '/boot/loader/entries';

describe.skipIf(skip)('a disk built from fixture:v1 boots under OVMF, then under SeaBIOS', () => {
  let tmp: string;
  let vm: Vm | undefined;
  let disk = '';

  const scratch = suiteDir('boot-disk');
  beforeAll(async () => {
    tmp = scratch.path;
    await deriveFixtureV1(join(tmp, 'layout'), 'no-console', WITHOUT_FIXTURE_CONSOLE, 'no console argument of its own');
    const generate = (variant: number) =>
      largeImage({ layers: 3, bytes: 24 * 1024 ** 2, base: { layoutDir: join(tmp, 'layout'), tag: 'no-console' }, variant, cacheDir: join(tmp, 'images') });
    // The same archive path for both builds, as CI would write it.
    const archive = join(tmp, 'os.tar');
    const image = `oci-archive:${archive}:large`;
    const config = join(tmp, 'config.toml');
    writeFileSync(
      config,
      [
        '[[customizations.user]]',
        'name = "alice"',
        'password = "correct horse"',
        'key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOnlyForTests alice@test"',
        'groups = ["sudo"]',
        '[customizations.kernel]',
        'append = "bootc.test=yes"',
        '',
      ].join('\n'),
    );
    const output = join(tmp, 'output');
    const build = async () => {
      const r = await execa(
        'node',
        ['--import', 'tsx', 'src/cli.ts', 'image', 'build-disk', image, '--type', 'qcow2', '--config', config,
          '--output', output, '--store', join(tmp, 'store'), '--work-dir', tmp, '--force'],
        { reject: false, all: true },
      );
      if (r.exitCode !== 0) throw new Error(`bootc image build-disk failed:\n${r.all}`);
      return r;
    };
    copyFileSync((await generate(0)).archivePath, archive);
    await build();
    copyFileSync((await generate(1)).archivePath, archive);
    const r = await build();
    // The disk that boots is the kept one, its root filesystem updated in place.
    if (!/Root filesystem: ext4 UUID=\S+ \(updated from the previous build/.test(r.stdout)) throw new Error(`the rebuild wrote its root filesystem whole:\n${r.all}`);
    DEPLOYMENT_ID = deploymentId(/^  Digest: (sha256:[0-9a-f]{64})$/m.exec(r.stdout)![1]!, 0);
    disk = diskImageOutputPath(output, 'qcow2');
    vm = await startVm({ name: 'boot-disk', boot: { kind: 'uefi' }, disks: [{ path: disk }] });
    await vm.waitForLogin();
  });

  afterAll(async () => {
    await vm?.dispose();
  });

  const guest = (): Vm => {
    if (!vm) throw new Error('the VM did not start');
    return vm;
  };

  it('showed the login prompt on the serial console with only bib\'s console arguments', async () => {
    // waitForLogin (beforeAll) saw the autologin prompt of serial-getty@ttyS0.
    // systemd-boot may add initrd= for the entry's initrd: not an argument of ours.
    const cmdline = (await guest().runOk('cat /proc/cmdline')).split(/\s+/).filter((a) => !a.startsWith('initrd='));
    expect(cmdline.filter((a) => a.startsWith('console='))).toEqual(['console=tty0', 'console=ttyS0']);
    expect(cmdline).toEqual([expect.stringMatching(/^root=UUID=/), 'rw', 'console=tty0', 'console=ttyS0', 'bootc.test=yes', `bootc.deploy=${STATEROOT}/${DEPLOYMENT_ID}`]);
    expect(await guest().runOk('test -e /usr/lib/bootc/kargs.d/10-fixture-console.toml && echo present || echo absent')).toBe('absent');
  });

  it('booted the rebuilt image (its changed last layer) with bootc.deploy= on the command line', async () => {
    expect(await guest().runOk('cat /usr/lib/fixture-release')).toBe('1');
    expect(await guest().runOk('cat /usr/share/bench/last-layer')).toBe('3 variant 1');
    expect(await guest().runOk('ls /usr/share/bench | wc -l')).toBe('4');
    expect((await guest().runOk('cat /proc/cmdline')).split(/\s+/)).toContain(`bootc.deploy=${STATEROOT}/${DEPLOYMENT_ID}`);
  });

  it('has the deployment as /, the stateroot /var and the physical root at /sysroot', async () => {
    expect(await guest().runOk('findmnt -n -o FSROOT /')).toBe(`/bootc/deploy/${STATEROOT}/${DEPLOYMENT_ID}`);
    expect(await guest().runOk('findmnt -n -o FSROOT /var')).toBe(`/bootc/state/${STATEROOT}/var`);
    expect(await guest().runOk('findmnt -n -o FSROOT /sysroot')).toBe('/');
    expect(await guest().runOk(`test -d /sysroot/bootc/deploy/${STATEROOT}/${DEPLOYMENT_ID}/usr && echo yes`)).toBe('yes');
  });

  it('applied config.toml: the user with its groups, password, SSH key, and the kernel argument', async () => {
    expect(await guest().runOk('id alice')).toMatch(/uid=1000\(alice\) gid=1000\(alice\) groups=1000\(alice\),27\(sudo\)/);
    expect(await guest().runOk('getent shadow alice | cut -d: -f2 | cut -c1-3')).toBe('$6$');
    expect(await guest().runOk('stat -c "%U %a" /home/alice/.ssh/authorized_keys')).toBe('alice 600');
    expect(await guest().runOk('cat /home/alice/.ssh/authorized_keys')).toContain('alice@test');
    expect((await guest().runOk('cat /proc/cmdline')).split(/\s+/)).toEqual(
      expect.arrayContaining(['bootc.test=yes', 'console=ttyS0', 'rw']),
    );
  });

  it('has a read-only /usr and a writable /etc and /var', async () => {
    const usr = await guest().run('touch /usr/x');
    expect(usr.exitCode).not.toBe(0);
    expect(usr.stdout).toContain('Read-only file system');
    expect(await guest().runOk('findmnt -n -o OPTIONS /usr')).toMatch(/^ro,/);
    await guest().runOk('echo etc-survives > /etc/bootc-test && echo var-survives > /var/bootc-test && sync');
  });

  it('counted the boot, and marked it good once boot-complete.target was reached', async () => {
    // systemd-boot told the OS which counted entry it booted: the +3 entry, renamed +2-1.
    const countPath = await guest().runOk(
      // efivarfs (not seekable): 4 bytes of attributes, then UTF-16LE text.
      "cat /sys/firmware/efi/efivars/LoaderBootCountPath-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f | tail -c +5 | tr -d '\\000'",
    );
    expect(countPath).toBe(`\\loader\\entries\\bootc-${STATEROOT}-${DEPLOYMENT_ID}+2-1.conf`);
    await guest().runOk('systemctl is-system-running --wait >/dev/null || true', 180_000);
    expect(await guest().runOk('systemctl is-active bootc-boot-complete.service')).toBe('active');
    expect(await guest().runOk(`ls ${ENTRIES}`)).toBe(`bootc-${STATEROOT}-${DEPLOYMENT_ID}.conf`);
  }, 240_000);

  it('boots the same disk under SeaBIOS through GRUB: /etc and /var kept, the marked entry', async () => {
    await guest().poweroff();
    await guest().dispose();
    vm = await startVm({ name: 'boot-disk-seabios', boot: { kind: 'bios' }, disks: [{ path: disk }] });
    await vm.waitForLogin();
    // GRUB, not systemd-boot: no EFI in the guest, and GRUB's BOOT_IMAGE= on the command line.
    expect(await guest().runOk('test -d /sys/firmware/efi && echo efi || echo bios')).toBe('bios');
    expect((await guest().runOk('cat /proc/cmdline')).split(/\s+/)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^BOOT_IMAGE=/), `bootc.deploy=${STATEROOT}/${DEPLOYMENT_ID}`]),
    );
    expect(await guest().runOk('cat /etc/bootc-test /var/bootc-test')).toBe('etc-survives\nvar-survives');
    expect(await guest().runOk('findmnt -n -o FSROOT /')).toBe(`/bootc/deploy/${STATEROOT}/${DEPLOYMENT_ID}`);
    expect(await guest().runOk(`ls ${ENTRIES}`)).toBe(`bootc-${STATEROOT}-${DEPLOYMENT_ID}.conf`);
  }, 600_000);
});
