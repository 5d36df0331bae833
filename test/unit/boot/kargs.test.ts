import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import { kargsFromKargsD, mergeKernelArguments, parseKargsD } from '../../../src/boot/kargs.js';

const base = { rootFsUuid: 'f00d', stateroot: 'default', deploymentId: 'd1' };

describe('kargs.d files', () => {
  it('reads kargs and match-architectures', () => {
    expect(parseKargsD('10-a.toml', 'kargs = ["a=1", "b"]\nmatch-architectures = ["x86_64"]\n')).toEqual({
      kargs: ['a=1', 'b'],
      matchArchitectures: ['x86_64'],
    });
  });

  it('names the file and the key it does not know', () => {
    const err = (() => {
      try {
        parseKargsD('usr/lib/bootc/kargs.d/10-a.toml', 'kargs = ["a"]\nmatch_architectures = ["x86_64"]\n');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe('usr/lib/bootc/kargs.d/10-a.toml: unknown key `match_architectures`');
    expect((err as UserError).hint).toContain('`kargs` and `match-architectures`');
  });

  it.each([
    ['no kargs', 'match-architectures = ["x86_64"]', /`kargs` is missing/],
    ['kargs not an array', 'kargs = "a b"', /must be an array of strings/],
    ['a non-string', 'kargs = [1]', /must be an array of strings/],
    ['bad TOML', 'kargs = [', /not valid TOML/],
    ['a line break', 'kargs = ["a\\nb"]', /invalid kernel argument/],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseKargsD('f.toml', text)).toThrow(message);
  });

  it('orders files by name and filters by architecture', () => {
    const files = [
      { name: '20-b.toml', text: 'kargs = ["b"]' },
      { name: '10-a.toml', text: 'kargs = ["a"]' },
      { name: '15-arm.toml', text: 'kargs = ["arm"]\nmatch-architectures = ["aarch64"]' },
      { name: '16-x86.toml', text: 'kargs = ["x86"]\nmatch-architectures = ["x86_64", "aarch64"]' },
      { name: 'README', text: 'not toml at all' },
    ];
    expect(kargsFromKargsD(files, 'x86_64')).toEqual(['a', 'x86', 'b']);
    expect(kargsFromKargsD(files, 'aarch64')).toEqual(['a', 'arm', 'x86', 'b']);
  });
});

describe('merging kernel arguments', () => {
  it('puts root, install config, kargs.d, then CLI, and bootc.deploy last', () => {
    expect(
      mergeKernelArguments({
        ...base,
        installConfigKargs: ['console=tty0'],
        kargsD: ['quiet'],
        cli: ['console=ttyS0'],
      }).join(' '),
    ).toBe('root=UUID=f00d rw console=tty0 quiet console=ttyS0 bootc.deploy=default/d1');
  });

  it('drops rw when the image asks for ro', () => {
    expect(mergeKernelArguments({ ...base, kargsD: ['ro'] })).toEqual(['root=UUID=f00d', 'ro', 'bootc.deploy=default/d1']);
  });

  it('deletes by key or by exact key=value, before the CLI kargs', () => {
    expect(
      mergeKernelArguments({
        ...base,
        installConfigKargs: ['quiet', 'console=tty0', 'console=ttyS0', 'mitigations=off'],
        deletes: ['console', 'mitigations=off', 'quiet=1'],
        cli: ['console=hvc0'],
      }),
    ).toEqual(['root=UUID=f00d', 'rw', 'quiet', 'console=hvc0', 'bootc.deploy=default/d1']);
  });

  it('keeps bootc.deploy out of reach of deletes and duplicates', () => {
    expect(
      mergeKernelArguments({ ...base, cli: ['bootc.deploy=other/x'], deletes: ['bootc.deploy'] }),
    ).toEqual(['root=UUID=f00d', 'rw', 'bootc.deploy=default/d1']);
  });

  it('places extra root kargs after root= and accepts quoted values', () => {
    expect(
      mergeKernelArguments({ ...base, rootKargs: ['rootflags=subvol=root'], cli: ['x="a b"'] }),
    ).toEqual(['root=UUID=f00d', 'rw', 'rootflags=subvol=root', 'x="a b"', 'bootc.deploy=default/d1']);
  });

  it('refuses a CLI karg with a line break', () => {
    expect(() => mergeKernelArguments({ ...base, cli: ['a\nb'] })).toThrow(UserError);
  });
});
