import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import {
  chooseRootFsType,
  mergeInstallConfig,
  parseInstallConfig,
  renderPrintConfiguration,
  resolveInstallConfig,
} from '../../../src/install/config.js';
import { loadInstallConfig } from '../../../src/install/config-files.js';
import { testDir } from '../../support/temp-tree.js';

const img = (name: string, text: string) => ({ path: `/usr/lib/bootc/install/${name}`, text });
const run = (name: string, text: string) => ({ path: `/run/bootc/install/${name}`, text });

describe('parseInstallConfig', () => {
  it('reads every upstream key', () => {
    const config = parseInstallConfig(
      '00-os.toml',
      [
        '[install.filesystem.root]',
        'type = "xfs"',
        '[install]',
        'root-fs-type = "ext4"',
        'block = ["direct", "tpm2-luks"]',
        'kargs = ["nosmt", "console=tty0"]',
        'karg-deletes = ["quiet"]',
        'match-architectures = ["x86_64"]',
        'stateroot = "myos"',
        'root-mount-spec = "LABEL=rootfs"',
        'boot-mount-spec = ""',
        'bootloader = "systemd"',
        'discoverable-partitions = false',
        'enforce-container-sigpolicy = true',
        '[install.ostree]',
        'bls-append-except-default = \'grub_users=""\'',
        '[install.bootupd]',
        'skip-boot-uuid = true',
      ].join('\n'),
    );
    expect(config).toEqual({
      filesystem: { root: { type: 'xfs' } },
      'root-fs-type': 'ext4',
      block: ['direct', 'tpm2-luks'],
      kargs: ['nosmt', 'console=tty0'],
      'karg-deletes': ['quiet'],
      'match-architectures': ['x86_64'],
      stateroot: 'myos',
      'root-mount-spec': 'LABEL=rootfs',
      'boot-mount-spec': '',
      bootloader: 'systemd',
      'discoverable-partitions': false,
      'enforce-container-sigpolicy': true,
      ostree: { 'bls-append-except-default': 'grub_users=""' },
      bootupd: { 'skip-boot-uuid': true },
    });
  });

  it('refuses an unknown key, naming the file and the key', () => {
    expect(() => parseInstallConfig('/etc/bootc/install/10-x.toml', '[install]\nroot_fs_type = "xfs"\n')).toThrow(
      /\/etc\/bootc\/install\/10-x\.toml: unknown key `install\.root_fs_type`/,
    );
    expect(() => parseInstallConfig('a.toml', '[install.filesystem.root]\nsize = 3\n')).toThrow(/a\.toml: unknown key `install\.filesystem\.root\.size`/);
    expect(() => parseInstallConfig('a.toml', '[other]\nx = 1\n')).toThrow(/a\.toml: unknown key `other`/);
  });

  it('refuses values of the wrong kind', () => {
    expect(() => parseInstallConfig('a.toml', '[install]\nroot-fs-type = "zfs"\n')).toThrow(/`install\.root-fs-type` must be one of "xfs", "ext4", "btrfs"/);
    expect(() => parseInstallConfig('a.toml', '[install]\nkargs = "quiet"\n')).toThrow(UserError);
    expect(() => parseInstallConfig('a.toml', '[install]\nblock = ["lvm"]\n')).toThrow(/block/);
    expect(() => parseInstallConfig('a.toml', '[install\n')).toThrow(/a\.toml is not valid TOML/);
  });

  it('ignores a file with no [install] table', () => {
    expect(parseInstallConfig('a.toml', '')).toBeNull();
  });
});

describe('resolveInstallConfig', () => {
  it('merges in name order: scalars overwrite, kargs append', () => {
    const merged = resolveInstallConfig(
      [
        img('20-b.toml', '[install]\nstateroot = "b"\nkargs = ["b"]\n'),
        img('10-a.toml', '[install]\nstateroot = "a"\nkargs = ["a"]\nkarg-deletes = ["x"]\n'),
        run('30-c.toml', '[install]\nkargs = ["c"]\nkarg-deletes = ["y"]\n'),
      ],
      'x86_64',
    );
    expect(merged).toEqual({ stateroot: 'b', kargs: ['a', 'b', 'c'], 'karg-deletes': ['x', 'y'] });
  });

  it('lets a host file replace the image file of the same name', () => {
    const merged = resolveInstallConfig(
      [img('00-os.toml', '[install]\nkargs = ["from-image"]\n'), run('00-os.toml', '[install]\nkargs = ["from-run"]\n')],
      'x86_64',
    );
    expect(merged?.kargs).toEqual(['from-run']);
  });

  it('skips fragments for other architectures', () => {
    const merged = resolveInstallConfig(
      [
        img('10-arm.toml', '[install]\nmatch-architectures = ["aarch64"]\nkargs = ["arm"]\n'),
        img('10-x86.toml', '[install]\nmatch-architectures = ["x86_64"]\nkargs = ["x86"]\n'),
      ],
      'x86_64',
    );
    expect(merged?.kargs).toEqual(['x86']);
    expect(resolveInstallConfig([img('10-arm.toml', '[install]\nmatch-architectures = ["aarch64"]\n')], 'x86_64')).toBeNull();
  });

  it('makes [install.filesystem.root] type win over root-fs-type, and fills either from the other', () => {
    expect(
      resolveInstallConfig([img('a.toml', '[install]\nroot-fs-type = "xfs"\n[install.filesystem.root]\ntype = "btrfs"\n')], 'x86_64'),
    ).toEqual({ 'root-fs-type': 'btrfs', filesystem: { root: { type: 'btrfs' } } });
    expect(resolveInstallConfig([img('a.toml', '[install]\nroot-fs-type = "xfs"\n')], 'x86_64')).toEqual({
      'root-fs-type': 'xfs',
      filesystem: { root: { type: 'xfs' } },
    });
  });

  it('merges nested tables key by key', () => {
    expect(mergeInstallConfig({ bootupd: { 'skip-boot-uuid': true } }, { filesystem: { root: { type: 'xfs' } } })).toEqual({
      bootupd: { 'skip-boot-uuid': true },
      filesystem: { root: { type: 'xfs' } },
    });
  });
});

describe('chooseRootFsType', () => {
  it('prefers the flag, then the config, then ext4', () => {
    const config = { filesystem: { root: { type: 'xfs' as const } } };
    expect(chooseRootFsType('btrfs', config)).toBe('btrfs');
    expect(chooseRootFsType(undefined, config)).toBe('xfs');
    expect(chooseRootFsType(undefined, { 'root-fs-type': 'btrfs' })).toBe('btrfs');
    expect(chooseRootFsType(undefined, null)).toBe('ext4');
  });
});

describe('renderPrintConfiguration', () => {
  const config = resolveInstallConfig(
    [img('00.toml', '[install]\nstateroot = "s"\nkargs = ["a"]\nkarg-deletes = ["b"]\n[install.filesystem.root]\ntype = "xfs"\n')],
    'x86_64',
  );
  it('prints canonical JSON without kargs', () => {
    expect(renderPrintConfiguration(config, false)).toBe('{"filesystem":{"root":{"type":"xfs"}},"root-fs-type":"xfs","stateroot":"s"}\n');
  });
  it('prints kargs with --all', () => {
    expect(renderPrintConfiguration(config, true)).toBe(
      '{"filesystem":{"root":{"type":"xfs"}},"karg-deletes":["b"],"kargs":["a"],"root-fs-type":"xfs","stateroot":"s"}\n',
    );
  });
  it('prints an empty object when nothing is configured', () => {
    expect(renderPrintConfiguration(null, true)).toBe('{}\n');
  });
});

describe('loadInstallConfig', () => {
  it('reads /usr/local/lib, /etc and /run after the image, in that precedence', async () => {
    const tmp = testDir('install-config');
    for (const [dir, value] of [
      ['usr/local/lib/bootc/install', 'local'],
      ['etc/bootc/install', 'etc'],
      ['run/bootc/install', 'run'],
    ] as const) {
      mkdirSync(join(tmp, dir), { recursive: true });
      writeFileSync(join(tmp, dir, '50-same.toml'), `[install]\nstateroot = "${value}"\n`);
      writeFileSync(join(tmp, dir, `60-${value}.toml`), `[install]\nkargs = ["${value}"]\n`);
      writeFileSync(join(tmp, dir, 'README'), 'not toml');
    }
    const config = await loadInstallConfig([img('50-same.toml', '[install]\nstateroot = "image"\nkargs = ["image"]\n')], {
      hostRoot: tmp,
      arch: 'x86_64',
    });
    expect(config).toEqual({ stateroot: 'run', kargs: ['etc', 'local', 'run'] });
  });
});
