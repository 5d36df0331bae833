/**
 * --bootloader and the install config's `bootloader` key: which values each command builds,
 * the refusals by name, and the default per command and architecture.
 */
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import { BOOTLOADERS, checkInstallConfig, chooseBootloader, type Bootloader, type InstallCommand } from '../../../src/install/config.js';
import type { DiskArch } from '../../../src/disk/gpt.js';
import { resolveDefaultedBootloader } from '../../../src/install/install.js';

const BUILT: Record<InstallCommand, Bootloader[]> = {
  'build-disk': ['hybrid', 'systemd'],
  'to-disk': ['hybrid', 'systemd'],
  'to-filesystem': ['systemd'],
};

const REFUSAL: Record<Bootloader, RegExp> = {
  grub: /boots UEFI through systemd-boot, never GRUB/,
  'grub-cc': /does not build the bootloader setup "grub-cc"/,
  none: /does not build the bootloader setup "none"/,
  hybrid: /does not build "hybrid" disks yet/,
  systemd: /never/,
};

describe('bootloader values by command', () => {
  for (const command of Object.keys(BUILT) as InstallCommand[]) {
    for (const value of BOOTLOADERS) {
      const built = BUILT[command].includes(value);
      it(`${command} --bootloader ${value}: ${built ? 'built' : 'refused'}`, () => {
        const asFlag = () => checkInstallConfig(null, command, { bootloader: value });
        const asKey = () => checkInstallConfig({ bootloader: value }, command);
        if (built) {
          expect(asFlag).not.toThrow();
          expect(asKey).not.toThrow();
        } else {
          expect(asFlag).toThrow(new RegExp(`^--bootloader ${value}: .*${REFUSAL[value].source}`));
          expect(asKey).toThrow(new RegExp(`\`bootloader = "${value}"\`: .*${REFUSAL[value].source}`));
        }
      });
    }
  }

  it('a flag we build wins over a key we do not', () => {
    expect(() => checkInstallConfig({ bootloader: 'grub' }, 'build-disk', { bootloader: 'systemd' })).not.toThrow();
  });
});

describe('the bootloader a disk gets', () => {
  it.each<[Bootloader | undefined, InstallCommand, DiskArch, 'hybrid' | 'systemd' | 'refused']>([
    [undefined, 'build-disk', 'x86_64', 'hybrid'],
    [undefined, 'build-disk', 'aarch64', 'systemd'],
    [undefined, 'to-disk', 'x86_64', 'hybrid'],
    [undefined, 'to-filesystem', 'x86_64', 'systemd'],
    ['systemd', 'build-disk', 'x86_64', 'systemd'],
    ['hybrid', 'build-disk', 'x86_64', 'hybrid'],
    ['hybrid', 'build-disk', 'aarch64', 'refused'],
  ])('%s, %s, %s: %s', (choice, command, arch, expected) => {
    if (expected === 'refused') expect(() => chooseBootloader(choice, command, arch)).toThrow(UserError);
    else expect(chooseBootloader(choice, command, arch)).toBe(expected);
  });
});

describe('hybrid as a default gives way', () => {
  const dir = '/nonexistent-deployment';
  it.each<['hybrid' | 'systemd', boolean, boolean, 'hybrid' | 'systemd' | 'refused']>([
    ['systemd', true, true, 'systemd'],
    ['systemd', false, false, 'systemd'],
    ['hybrid', true, true, 'systemd'],
    ['hybrid', false, true, 'refused'],
  ])('%s (defaulted %s, UKI %s): %s', async (chosen, defaulted, uki, expected) => {
    const r = resolveDefaultedBootloader(chosen, defaulted, uki, dir);
    if (expected === 'refused') await expect(r).rejects.toThrow(/a UKI boots only under UEFI/);
    else expect(await r).toBe(expected);
  });

  it('to systemd where no grub-mkimage is found, but not when hybrid was asked for', async () => {
    const path = process.env['PATH'];
    process.env['PATH'] = '/nonexistent';
    try {
      expect(await resolveDefaultedBootloader('hybrid', true, false, dir)).toBe('systemd');
      expect(await resolveDefaultedBootloader('hybrid', false, false, dir)).toBe('hybrid');
    } finally {
      process.env['PATH'] = path;
    }
  });
});
