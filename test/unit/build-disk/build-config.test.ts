import { describe, expect, it } from 'vitest';
import { parseBuildConfig, parseSize } from '../../../src/build-disk/build-config.js';

describe('bootc-image-builder config.toml', () => {
  it('reads users, kernel append and the root minsize', () => {
    const c = parseBuildConfig(
      `
[[customizations.user]]
name = "alice"
password = "$6$x$y"
key = "ssh-ed25519 AAAA alice@example"
groups = ["sudo"]

[customizations.kernel]
append = "console=ttyS0  quiet"

[[customizations.filesystem]]
mountpoint = "/"
minsize = "10 GiB"
`,
      'config.toml',
    );
    expect(c.users).toEqual([{ name: 'alice', password: '$6$x$y', key: 'ssh-ed25519 AAAA alice@example', groups: ['sudo'] }]);
    expect(c.kernelAppend).toEqual(['console=ttyS0', 'quiet']);
    expect(c.rootMinSize).toBe(10 * 1024 ** 3);
  });

  it('reads JSON too', () => {
    const c = parseBuildConfig('{"customizations":{"kernel":{"append":"a=b"}}}', 'config.json');
    expect(c.kernelAppend).toEqual(['a=b']);
  });

  it('an empty file is an empty config', () => {
    expect(parseBuildConfig('', 'config.toml')).toEqual({ users: [], kernelAppend: [], rootMinSize: undefined });
  });

  it('refuses customisations it does not implement, by name', () => {
    expect(() => parseBuildConfig('[customizations.installer.kickstart]\ncontents = "x"\n', 'config.toml')).toThrow(
      /config.toml: unsupported key "customizations.installer"/,
    );
  });

  it('refuses a non-root filesystem customisation', () => {
    expect(() =>
      parseBuildConfig('[[customizations.filesystem]]\nmountpoint = "/var/log"\nminsize = 1000\n', 'c.toml'),
    ).toThrow(/"\/var\/log" is not supported/);
  });

  it('explains a TOML syntax error', () => {
    expect(() => parseBuildConfig('[customizations', 'config.toml')).toThrow(/config.toml: not valid TOML/);
  });

  it('sizes: decimal and binary units', () => {
    expect(parseSize('20 GB', 'x')).toBe(20e9);
    expect(parseSize('512MiB', 'x')).toBe(512 * 1024 ** 2);
    expect(parseSize(4096, 'x')).toBe(4096);
    expect(() => parseSize('lots', 'x')).toThrow(/cannot read the size "lots"/);
  });
});
