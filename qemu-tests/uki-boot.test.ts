/**
 * qemu tier: `bootc image build-disk --uki` (the real CLI) boots fixture:v1 through
 * systemd-boot and a UKI in EFI/Linux/ (Type #2, no Type #1 entry, boot counting on the
 * UKI's name, marked good by bootc-boot-complete), and with
 * `--sign-key/--sign-cert` under Secure Boot: OVMF's secboot firmware with Debian's
 * snakeoil variables, which trust the snakeoil certificate shipped in the `ovmf` package.
 * A signed UKI whose os-release was altered afterwards is refused by the firmware. Two
 * UKIs of one deployment show that systemd-boot's default follows the `.osrel` boot order.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../test/support/tier.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, readFixturesIndex } from '../fixtures/paths.js';
import { deploymentId } from '../src/deploy/paths.js';
import { diskImageOutputPath } from '../src/build-disk/disk-image.js';
import { parsePe } from '../src/uki/pe.js';
import { withBootOrder } from '../src/uki/boot-order.js';
import { OVMF_CODE, OVMF_CODE_SECBOOT, OVMF_VARS_SNAKEOIL, OVMF_VARS_TEMPLATE, QEMU, startVm, type Vm } from './harness.js';
import { suiteDir } from '../test/support/temp-tree.js';

const SNAKEOIL_KEY = '/usr/share/ovmf/PkKek-1-snakeoil.key';
const SNAKEOIL_CERT = '/usr/share/ovmf/PkKek-1-snakeoil.pem';
/** Debian's snakeoil key is protected by this passphrase (ovmf's README.Debian). */
const SNAKEOIL_PASSPHRASE = 'snakeoil';
const STATEROOT = 'default';
const SECURE_BOOT_VAR = '/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c';
const BOOT_COUNT_PATH_VAR = '/sys/firmware/efi/efivars/LoaderBootCountPath-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f';
const ENTRY_SELECTED_VAR = '/sys/firmware/efi/efivars/LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f';

const skip = explainSkip(
  'qemu',
  needsRoot() ??
    needsCommands(QEMU, 'setpriv', 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'qemu-img', 'sbsign', 'openssl') ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(OVMF_CODE_SECBOOT, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_SNAKEOIL, 'install the Debian package ovmf') ??
    needsFile(SNAKEOIL_KEY, 'install the Debian package ovmf') ??
    needsFile(fixturesIndexPath, fixturesHint),
);

const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' };

/** Byte offset of the ESP inside a raw disk image. */
async function espOffset(raw: string): Promise<number> {
  const { stdout } = await execa('sfdisk', ['--json', raw]);
  const table = JSON.parse(stdout) as { partitiontable: { partitions: Array<{ start: number; type: string }> } };
  const esp = table.partitiontable.partitions.find((p) => p.type.toUpperCase() === 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
  if (!esp) throw new Error(`${raw} has no ESP`);
  return esp.start * 512;
}

async function buildDisk(tmp: string, name: string, extra: string[]): Promise<string> {
  const output = join(tmp, name);
  const r = await execa(
    'node',
    ['--import', 'tsx', 'src/cli.ts', 'image', 'build-disk', ociLayoutRef('v1'), '--type', 'raw', '--uki', ...extra,
      '--output', output, '--store', join(tmp, 'store'), '--work-dir', tmp, '--quiet'],
    { reject: false, all: true },
  );
  if (r.exitCode !== 0) throw new Error(`bootc image build-disk --uki failed:\n${r.all}`);
  return diskImageOutputPath(output, 'raw');
}

/** An efivarfs variable as text: 4 bytes of attributes, then UTF-16LE. */
const efiVarText = (path: string): string => `cat ${path} | tail -c +5 | tr -d '\\000'`;

describe.skipIf(skip)('a disk built with --uki boots through systemd-boot and the UKI', () => {
  let tmp: string;
  let plainDisk: string;
  let signedDisk: string;
  let tamperedDisk: string;
  let orderDisk: string;
  let id: string;
  let ukiName: string;
  const vms: Vm[] = [];

  const scratch = suiteDir('uki-boot');
  beforeAll(async () => {
    tmp = scratch.path;
    id = deploymentId(readFixturesIndex().tags.v1.manifestDigest, 0);
    ukiName = `bootc-${STATEROOT}-${id}+3.efi`;
    const key = join(tmp, 'snakeoil.key');
    await execa('openssl', ['pkey', '-in', SNAKEOIL_KEY, '-passin', `pass:${SNAKEOIL_PASSPHRASE}`, '-out', key]);
    plainDisk = await buildDisk(tmp, 'plain', []);
    signedDisk = await buildDisk(tmp, 'signed', ['--sign-key', key, '--sign-cert', SNAKEOIL_CERT]);

    // The signed disk with one byte of the UKI's os-release changed after signing: harmless
    // to the boot itself, so only the signature check can stop it.
    tamperedDisk = join(tmp, 'tampered.raw');
    copyFileSync(signedDisk, tamperedDisk);
    const drive = `${tamperedDisk}@@${await espOffset(tamperedDisk)}`;
    const uki = join(tmp, 'tampered.efi');
    await execa('mcopy', ['-n', '-i', drive, `::/EFI/Linux/${ukiName}`, uki], { env: MTOOLS_ENV });
    const bytes = readFileSync(uki);
    const osrel = parsePe(bytes, uki).sections.find((s) => s.name === '.osrel');
    if (!osrel) throw new Error('the signed UKI has no .osrel');
    const at = bytes.indexOf('Debian', osrel.pointerToRawData);
    if (at < 0 || at > osrel.pointerToRawData + osrel.virtualSize) throw new Error('no "Debian" in the UKI\'s .osrel');
    bytes[at] = 'd'.charCodeAt(0);
    writeFileSync(uki, bytes);
    await execa('mcopy', ['-o', '-i', drive, uki, `::/EFI/Linux/${ukiName}`], { env: MTOOLS_ENV });

    // Two UKIs of one deployment under other names, ordered by their .osrel boot order only.
    orderDisk = join(tmp, 'order.raw');
    copyFileSync(plainDisk, orderDisk);
    const orderDrive = `${orderDisk}@@${await espOffset(orderDisk)}`;
    const original = join(tmp, 'original.efi');
    await execa('mcopy', ['-n', '-i', orderDrive, `::/EFI/Linux/${ukiName}`, original], { env: MTOOLS_ENV });
    await execa('mdel', ['-i', orderDrive, `::/EFI/Linux/${ukiName}`], { env: MTOOLS_ENV });
    await putOrdered(orderDrive, original, { 'bootc-default-a.0.efi': 2, 'bootc-default-b.0.efi': 1 });
  });

  /** Copies `uki` onto the ESP under each name, with that boot order in its .osrel. */
  async function putOrdered(drive: string, uki: string, orders: Record<string, number>): Promise<void> {
    for (const [name, order] of Object.entries(orders)) {
      const file = join(tmp, name);
      writeFileSync(file, withBootOrder(readFileSync(uki), uki, order).bytes);
      await execa('mcopy', ['-o', '-i', drive, file, `::/EFI/Linux/${name}`], { env: MTOOLS_ENV });
    }
  }

  afterAll(async () => {
    for (const vm of vms) await vm.dispose();
  });

  it('boots the UKI: its command line, no Type #1 entry, boot counting on the UKI', async () => {
    const vm = await startVm({ name: 'uki-boot', boot: { kind: 'uefi' }, disks: [{ path: plainDisk, format: 'raw' }] });
    vms.push(vm);
    await vm.waitForLogin();
    const cmdline = (await vm.runOk('cat /proc/cmdline')).split(/\s+/);
    expect(cmdline).toContain(`bootc.deploy=${STATEROOT}/${id}`);
    expect(cmdline).toContain('console=ttyS0,115200');
    expect(await vm.runOk('findmnt -n -o FSROOT /')).toBe(`/bootc/deploy/${STATEROOT}/${id}`);
    expect(await vm.runOk(efiVarText(BOOT_COUNT_PATH_VAR))).toBe(`\\EFI\\Linux\\bootc-${STATEROOT}-${id}+2-1.efi`);
    expect(await vm.runOk('ls -A /boot/loader/entries 2>/dev/null | wc -l')).toBe('0');
    // Once boot-complete.target is reached, bootc-boot-complete drops the counter from the UKI's name.
    await vm.runOk('systemctl is-system-running --wait >/dev/null || true', 180_000);
    expect(await vm.runOk('systemctl is-active bootc-boot-complete.service')).toBe('active');
    expect(await vm.runOk('ls /boot/EFI/Linux')).toBe(`bootc-${STATEROOT}-${id}.efi`);
    await vm.dispose();
  }, 500_000);

  it('boots the signed UKI and signed systemd-boot with Secure Boot enforcing', async () => {
    const vm = await startVm({
      name: 'uki-secure-boot',
      boot: { kind: 'uefi', code: OVMF_CODE_SECBOOT, varsTemplate: OVMF_VARS_SNAKEOIL, secureBoot: true },
      disks: [{ path: signedDisk, format: 'raw' }],
    });
    vms.push(vm);
    await vm.waitForLogin();
    expect(await vm.runOk(`od -An -t u1 ${SECURE_BOOT_VAR} | awk '{print $NF}'`)).toBe('1');
    expect((await vm.runOk('cat /proc/cmdline')).split(/\s+/)).toContain(`bootc.deploy=${STATEROOT}/${id}`);
    expect(await vm.runOk(efiVarText(BOOT_COUNT_PATH_VAR))).toBe(`\\EFI\\Linux\\bootc-${STATEROOT}-${id}+2-1.efi`);
    await vm.dispose();
  }, 400_000);

  it('refuses a signed UKI that was altered after signing', async () => {
    const vm = await startVm({
      name: 'uki-secure-boot-tampered',
      boot: { kind: 'uefi', code: OVMF_CODE_SECBOOT, varsTemplate: OVMF_VARS_SNAKEOIL, secureBoot: true },
      disks: [{ path: tamperedDisk, format: 'raw' }],
    });
    vms.push(vm);
    // systemd-boot's LoadImage of the UKI fails the firmware's signature check.
    const [message] = await vm.waitFor(/Error loading[^\r\n]*(Security Violation|Access Denied)/, 240_000);
    expect(message).toContain(ukiName.replace(/\+3\.efi$/, ''));
    await vm.dispose();
  }, 400_000);

  it('boots the UKI with the highest .osrel boot order by default, whatever the file names say', async () => {
    // Names alone would put b first (systemd-boot orders ids descending); the boot order says a.
    let vm = await startVm({ name: 'uki-order', boot: { kind: 'uefi' }, disks: [{ path: orderDisk, format: 'raw' }] });
    vms.push(vm);
    await vm.waitForLogin();
    expect(await vm.runOk(efiVarText(ENTRY_SELECTED_VAR))).toBe('bootc-default-a.0.efi');
    await vm.dispose();

    const drive = `${orderDisk}@@${await espOffset(orderDisk)}`;
    const original = join(tmp, 'original.efi');
    await putOrdered(drive, original, { 'bootc-default-a.0.efi': 1, 'bootc-default-b.0.efi': 3 });
    vm = await startVm({ name: 'uki-order-swapped', boot: { kind: 'uefi' }, disks: [{ path: orderDisk, format: 'raw' }] });
    vms.push(vm);
    await vm.waitForLogin();
    expect(await vm.runOk(efiVarText(ENTRY_SELECTED_VAR))).toBe('bootc-default-b.0.efi');
    await vm.dispose();
  }, 800_000);
});
