/** The install target checks on captured (and derived, see fixtures/lsblk/README.md) lsblk output. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import {
  checkInstallTarget,
  parseBlkidExport,
  parseLsblk,
  rootDeviceNumbers,
  type DeviceProbe,
  type TargetFacts,
} from '../../../src/disk/block-device.js';

const fixture = (name: string): string => readFileSync(join('fixtures/lsblk', name), 'utf8');
const facts = (file: string, probe: DeviceProbe = {}, runningRoot: string | null = '254:0'): TargetFacts => {
  const device = parseLsblk(fixture(file), 'test');
  return { device, probe, runningRoot };
};
const refusal = (f: TargetFacts, wipe = false): UserError => {
  try {
    checkInstallTarget(f, wipe);
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
  throw new Error('the target was accepted');
};

describe('parseLsblk', () => {
  it('reads the captured output of a loop device', () => {
    const d = parseLsblk(fixture('loop-empty.json'), '/dev/loop0');
    expect(d).toMatchObject({ name: 'loop0', path: '/dev/loop0', type: 'loop', size: 268435456, fstype: null });
  });
  it('refuses output that is not lsblk JSON', () => {
    expect(() => parseLsblk('nope', '/dev/x')).toThrow(/not JSON for \/dev\/x/);
    expect(() => parseLsblk('{"blockdevices":[]}', '/dev/x')).toThrow(/exactly one device/);
  });
});

describe('rootDeviceNumbers and parseBlkidExport', () => {
  it('finds the device of / in mountinfo', () => {
    const mountinfo = '22 27 0:21 / /proc rw,relatime - proc proc rw\n27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n';
    expect(rootDeviceNumbers(mountinfo)).toBe('254:0');
    expect(rootDeviceNumbers('')).toBeNull();
  });
  it('reads the captured blkid probe of a GPT disk', () => {
    expect(parseBlkidExport(fixture('loop-gpt.blkid'))).toMatchObject({ DEVNAME: '/dev/loop0', PTTYPE: 'gpt' });
  });
});

describe('checkInstallTarget', () => {
  it('accepts a blank disk', () => {
    expect(() => checkInstallTarget(facts('loop-empty.json'), false)).not.toThrow();
  });

  it('refuses the disk holding the running root, even with --wipe', () => {
    const err = refusal(facts('vda-running-root.json'), true);
    expect(err.message).toBe("/dev/vda holds the running system's root filesystem");
    // Found by device number alone too (e.g. / reached through a bind mount).
    const unmountedView = facts('loop-empty.json', {}, '7:0');
    expect(refusal(unmountedView, true).message).toMatch(/holds the running system's root/);
  });

  it('refuses a mounted disk or partition, even with --wipe', () => {
    expect(refusal(facts('loop-mounted.json'), true).message).toBe('/dev/loop0 is mounted at /tmp/lsblkmnt');
    const err = refusal(facts('derived-loop-partition-mounted.json'), true);
    expect(err.message).toBe('/dev/loop0p2 is mounted at /mnt/data');
    expect(err.hint).toContain('umount /mnt/data');
  });

  it('refuses a disk in active LVM, LUKS or RAID use, even with --wipe', () => {
    expect(refusal(facts('derived-loop-lvm.json'), true).message).toBe('/dev/loop0 is in use: /dev/mapper/vg0-root is an active LVM logical volume on it');
    expect(refusal(facts('derived-loop-luks.json'), true).message).toMatch(/open LUKS \(dm-crypt\) mapping/);
    expect(refusal(facts('derived-loop-raid.json'), true).message).toMatch(/active RAID array/);
  });

  it('refuses existing partitions without --wipe, and accepts them with it', () => {
    const kernelPartitions = facts('derived-loop-partitioned.json');
    expect(refusal(kernelPartitions).message).toBe('Detected existing partitions on /dev/loop0: /dev/loop0p1, /dev/loop0p2');
    expect(refusal(kernelPartitions).hint).toMatch(/--wipe/);
    expect(() => checkInstallTarget(kernelPartitions, true)).not.toThrow();
    // No kernel partitions (no udev, no GPT support): the probe finds the table.
    const probed = facts('loop-gpt-no-kernel-partitions.json', { partitionTable: 'gpt' });
    expect(refusal(probed).message).toBe('Detected existing partitions on /dev/loop0: a gpt partition table');
    expect(() => checkInstallTarget(probed, true)).not.toThrow();
  });

  it('refuses a filesystem directly on the disk without --wipe', () => {
    expect(refusal(facts('loop-empty.json', { signature: 'xfs' })).message).toBe('/dev/loop0 holds a xfs signature');
  });

  it('refuses a partition as target', () => {
    const d = parseLsblk(fixture('derived-loop-partitioned.json'), 'x').children![0]!;
    expect(refusal({ device: d, probe: {}, runningRoot: null }).message).toMatch(/^\/dev\/loop0p1 is not a whole disk/);
  });
});
