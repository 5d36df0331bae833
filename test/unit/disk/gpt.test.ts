import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import { GiB, MiB, planDiskLayout, renderSfdiskScript } from '../../../src/disk/gpt.js';
import { parseSfdiskJson } from '../../../src/disk/partition-table.js';
import { checkRootFsSupported, rootFsDefaultBytes, rootFsMinBytes } from '../../../src/disk/root-filesystem.js';

describe('GPT planner', () => {
  it('lays out ESP then root, 1 MiB aligned, with room for both GPT copies', () => {
    const layout = planDiskLayout({ rootMinBytes: 3 * GiB + 5 });
    expect(layout.esp).toEqual({
      number: 1,
      name: 'EFI-SYSTEM',
      typeGuid: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
      startBytes: MiB,
      sizeBytes: GiB,
    });
    expect(layout.root).toEqual({
      number: 2,
      name: 'root',
      typeGuid: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
      startBytes: MiB + GiB,
      sizeBytes: 3 * GiB + MiB,
    });
    expect(layout.totalBytes).toBe(MiB + GiB + 3 * GiB + MiB + MiB);
  });

  it('gives the rest of a requested size to root, and uses the aarch64 root type there', () => {
    const layout = planDiskLayout({ rootMinBytes: GiB, totalBytes: 10 * GiB + 123, espBytes: 512 * MiB, arch: 'aarch64' });
    expect(layout.totalBytes).toBe(10 * GiB);
    expect(layout.root.startBytes + layout.root.sizeBytes).toBe(10 * GiB - MiB);
    expect(layout.root.typeGuid).toBe('B921B045-1DF0-41C3-AF44-4C6F280D3FAE');
  });

  it('says how much is needed when the requested size is too small', () => {
    try {
      planDiskLayout({ rootMinBytes: 2 * GiB, totalBytes: 2 * GiB });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).message).toBe(
        'a disk of 2 GiB is too small for this image: it needs at least 3074 MiB (ESP 1 GiB, root filesystem 2 GiB)',
      );
      expect((err as UserError).hint).toContain('--size 3074M');
    }
  });

  it('renders an sfdisk script in sectors', () => {
    const layout = planDiskLayout({ rootMinBytes: GiB, espBytes: 64 * MiB });
    expect(renderSfdiskScript(layout, 'd209c89e-ea5e-4fbd-b161-b461cce297e0')).toBe(
      [
        'label: gpt',
        'label-id: D209C89E-EA5E-4FBD-B161-B461CCE297E0',
        'unit: sectors',
        'sector-size: 512',
        'first-lba: 2048',
        '',
        'start=2048, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI-SYSTEM"',
        'start=133120, size=2097152, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"',
        '',
      ].join('\n'),
    );
  });
  it('puts the BIOS boot partition in the gap before the ESP, numbered 3, leaving ESP and root in place', () => {
    const plain = planDiskLayout({ rootMinBytes: GiB, espBytes: 64 * MiB });
    const hybrid = planDiskLayout({ rootMinBytes: GiB, espBytes: 64 * MiB, biosBoot: true });
    expect(hybrid.esp).toEqual(plain.esp);
    expect(hybrid.root).toEqual(plain.root);
    expect(hybrid.biosBoot).toEqual({
      number: 3,
      name: 'BIOS-BOOT',
      typeGuid: '21686148-6449-6E6F-744E-656564454649',
      startBytes: 34 * 512,
      sizeBytes: (2048 - 34) * 512,
    });
    expect(renderSfdiskScript(hybrid).split('\n')).toEqual([
      'label: gpt',
      'unit: sectors',
      'sector-size: 512',
      'first-lba: 34',
      '',
      'start=2048, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI-SYSTEM"',
      'start=133120, size=2097152, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"',
      'start=34, size=2014, type=21686148-6449-6E6F-744E-656564454649, name="BIOS-BOOT"',
      '',
    ]);
  });

  it('refuses a BIOS boot partition on aarch64', () => {
    expect(() => planDiskLayout({ rootMinBytes: GiB, arch: 'aarch64', biosBoot: true })).toThrow(UserError);
  });
});

describe('sfdisk --json', () => {
  it('parses a GPT', () => {
    const json = JSON.stringify({
      partitiontable: {
        label: 'gpt',
        id: 'ABC',
        device: 'disk.raw',
        unit: 'sectors',
        firstlba: 2048,
        lastlba: 4194270,
        sectorsize: 512,
        partitions: [
          { node: 'disk.raw1', start: 2048, size: 131072, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', uuid: 'U1', name: 'EFI-SYSTEM' },
          { node: 'disk.raw2', start: 133120, size: 2097152, type: '4f68bce3-e8cd-4db1-96e7-fbcaf984b709', uuid: 'U2', name: 'root' },
        ],
      },
    });
    const table = parseSfdiskJson(json);
    expect(table.label).toBe('gpt');
    expect(table.partitions[1]).toEqual({
      node: 'disk.raw2',
      startBytes: 133120 * 512,
      sizeBytes: 2097152 * 512,
      typeGuid: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
      uuid: 'U2',
      name: 'root',
    });
  });

  it('refuses output without a table', () => {
    expect(() => parseSfdiskJson('{}')).toThrow(UserError);
    expect(() => parseSfdiskJson('nope')).toThrow(UserError);
  });
});

describe('root filesystem sizing', () => {
  const tree = { dataBytes: 500 * MiB, inodes: 20_000 };

  it('leaves room for ext4 metadata and the journal', () => {
    const min = rootFsMinBytes(tree, 'ext4');
    expect(min % MiB).toBe(0);
    expect(min).toBeGreaterThan(500 * MiB + 128 * MiB);
    expect(rootFsMinBytes(tree, 'btrfs')).toBeGreaterThan(min);
  });

  it('keeps enough inodes for trees of many small files', () => {
    const many = { dataBytes: 100 * MiB, inodes: 200_000 };
    expect(rootFsMinBytes(many, 'ext4')).toBeGreaterThanOrEqual(200_000 * 16 * 1024);
  });

  it('defaults to twice the data, never below the minimum', () => {
    expect(rootFsDefaultBytes(tree, 'ext4')).toBe(1000 * MiB);
    const tiny = { dataBytes: MiB, inodes: 10 };
    expect(rootFsDefaultBytes(tiny, 'ext4')).toBe(rootFsMinBytes(tiny, 'ext4'));
  });

  it('refuses xfs with a hint', () => {
    expect(() => checkRootFsSupported('xfs')).toThrow(/xfs root filesystem cannot be built without a loop device/);
    expect(() => checkRootFsSupported('ext4')).not.toThrow();
  });
});
