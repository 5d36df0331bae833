import { describe, expect, it } from 'vitest';
import { renderAleph, renderFstab, renderRootSshTmpfiles, resolveRootHome } from '../../../src/install/os-config.js';
import { mkfsRootArgv, planInstallLayout } from '../../../src/install/to-disk.js';
import { parseRootSize } from '../../../src/install/options.js';
import { partitionNodeName } from '../../../src/disk/loop-device.js';
import { GiB, MiB } from '../../../src/disk/gpt.js';

describe('renderFstab', () => {
  const mounts = [
    { spec: 'UUID=r', mountpoint: '/', fsType: 'ext4', options: 'defaults' },
    { spec: 'UUID=ABCD-1234', mountpoint: '/boot', fsType: 'vfat', options: 'umask=0077,shortname=winnt' },
  ];
  it('keeps comments and other mounts, replaces lines for the same mount points', () => {
    const existing = '# UNCONFIGURED FSTAB FOR BASE SYSTEM\n/dev/sda1 / ext4 defaults 0 1\ntmpfs /scratch tmpfs defaults 0 0\n';
    expect(renderFstab(existing, mounts)).toBe(
      '# UNCONFIGURED FSTAB FOR BASE SYSTEM\ntmpfs /scratch tmpfs defaults 0 0\nUUID=r / ext4 defaults 0 0\nUUID=ABCD-1234 /boot vfat umask=0077,shortname=winnt 0 0\n',
    );
  });
  it('writes a new file', () => {
    expect(renderFstab('', mounts.slice(0, 1))).toBe('UUID=r / ext4 defaults 0 0\n');
  });
});

describe('root SSH key', () => {
  it('is an f~ tmpfiles line with the base64 keys under the real home of root', () => {
    const text = renderRootSshTmpfiles('ssh-ed25519 AAAA a@b', resolveRootHome('var/roothome'));
    expect(text).toBe(
      'd /var/roothome/.ssh 0700 root root -\n' +
        `f~ /var/roothome/.ssh/authorized_keys 600 root root - ${Buffer.from('ssh-ed25519 AAAA a@b\n').toString('base64')}\n`,
    );
  });
  it('resolves /root', () => {
    expect(resolveRootHome(null)).toBe('/root');
    expect(resolveRootHome('/var/roothome/')).toBe('/var/roothome/');
    expect(resolveRootHome('var/roothome')).toBe('/var/roothome');
  });
});

describe('renderAleph', () => {
  it('uses upstream\'s kebab-case keys', () => {
    const doc = JSON.parse(
      renderAleph({
        image: 'quay.io/x/os@sha256:aa',
        digest: 'sha256:aa',
        'target-image': 'quay.io/x/os:latest',
        labels: { a: 'b' },
        version: '1.0',
        timestamp: '2026-01-01T00:00:00.000Z',
        kernel: '6.1.0',
        selinux: 'disabled',
        'installer-version': '0.1.0',
      }),
    ) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(['image', 'digest', 'target-image', 'labels', 'version', 'timestamp', 'kernel', 'selinux', 'installer-version']);
  });
});

describe('to-disk planning', () => {
  it('parses --root-size with MiB as the bare unit', () => {
    expect(parseRootSize('512')).toBe(512 * MiB);
    expect(parseRootSize('20G')).toBe(20 * GiB);
    expect(parseRootSize('1t')).toBe(1024 * GiB);
    expect(() => parseRootSize('20 GiB')).toThrow(/invalid --root-size "20 GiB"/);
  });

  it('gives the root the rest of the disk, or exactly --root-size', () => {
    const whole = planInstallLayout('/dev/vdb', 10 * GiB);
    expect(whole.esp).toMatchObject({ name: 'EFI-SYSTEM', startBytes: MiB, sizeBytes: GiB });
    expect(whole.root).toMatchObject({ name: 'root', startBytes: MiB + GiB, sizeBytes: 10 * GiB - 2 * MiB - GiB });
    const sized = planInstallLayout('/dev/vdb', 10 * GiB, 3 * GiB);
    expect(sized.root.sizeBytes).toBe(3 * GiB);
    expect(sized.totalBytes).toBe(10 * GiB);
  });

  it('refuses a disk that is too small, saying what it needs', () => {
    expect(() => planInstallLayout('/dev/vdb', 2 * GiB)).toThrow('/dev/vdb (2 GiB) is too small: it needs at least 3074 MiB (ESP 1 GiB, root 2 GiB)');
    expect(() => planInstallLayout('/dev/vdb', 10 * GiB, 20 * GiB)).toThrow(/too small/);
  });

  it('creates each filesystem with the label root and the chosen UUID', () => {
    expect(mkfsRootArgv('ext4', '/dev/vdb2', 'u')).toEqual(['mkfs.ext4', '-q', '-F', '-L', 'root', '-U', 'u', '/dev/vdb2']);
    expect(mkfsRootArgv('xfs', '/dev/vdb2', 'u')).toEqual(['mkfs.xfs', '-q', '-f', '-L', 'root', '-m', 'uuid=u', '/dev/vdb2']);
    expect(mkfsRootArgv('btrfs', '/dev/vdb2', 'u')).toEqual(['mkfs.btrfs', '-q', '-f', '-L', 'root', '-U', 'u', '/dev/vdb2']);
  });

  it('names partition nodes as the kernel does', () => {
    expect(partitionNodeName('/dev/loop3', 2)).toBe('loop3p2');
    expect(partitionNodeName('/dev/nvme0n1', 1)).toBe('nvme0n1p1');
    expect(partitionNodeName('/dev/vdb', 1)).toBe('vdb1');
  });
});
