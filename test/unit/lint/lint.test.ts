import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../../../src/core/errors.js';
import { childPathBytes, LINTS, lintRootfs, renderLintList, renderOutcome, runLints, sysusersDeclared, tmpfilesPaths } from '../../../src/container/lint.js';
import { RootfsView } from '../../../src/container/rootfs-view.js';
import { writeNewcCpio } from '../../../src/boot/cpio.js';

import { scriptInitrd, systemdInitrd } from '../../support/initrd.js';
import { testDir } from '../../support/temp-tree.js';

function file(root: string, rel: string, content: string | Buffer = ''): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), content);
}

function dir(root: string, rel: string): void {
  mkdirSync(join(root, rel), { recursive: true });
}

/** A tree every lint accepts: API directories, one kernel, /var/run a symlink, empty /boot. */
function goodTree(): string {
  return testDir('lint', {
    files: {
      ...Object.fromEntries(['dev', 'proc', 'sys', 'run', 'tmp', 'var/log', 'boot', 'etc'].map((d) => [d, { directory: true } as const])),
      'var/run': { symlink: '../run' },
      'usr/lib/modules/6.1.0-1-amd64/vmlinuz': 'kernel',
      'usr/lib/modules/6.1.0-1-amd64/initramfs.img': writeNewcCpio(systemdInitrd),
      'usr/bin/bootc': '#!/bin/sh\n',
      'usr/lib/os-release': 'ID=debian\n',
      'usr/lib/bootc/kargs.d/10-console.toml': 'kargs = ["console=ttyS0"]\n',
      'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
      'etc/group': 'root:x:0:\n',
      'usr/lib/sysusers.d/basic.conf': 'u root 0 "Super User" /root\n',
      'usr/lib/tmpfiles.d/var.conf': 'd /var/log 0755 - - -\nL /var/run - - - - ../run\n',
    },
  });
}

const lint = (name: string) => {
  const found = LINTS.find((l) => l.name === name);
  if (!found) throw new Error(`no lint ${name}`);
  return found;
};

describe('a tree that satisfies every lint', () => {
  it('passes all lints that apply to an unpacked image', async () => {
    const report = await runLints(new RootfsView(goodTree()));
    expect(report.lines).toEqual([`Checks passed: ${LINTS.length - 1}`, 'Checks skipped: 1']);
    expect(report.failed).toBe(0);
  });

  it('passes var-tmpfiles (a running-root lint) when every /var entry is declared', async () => {
    const root = goodTree();
    expect(await lint('var-tmpfiles').check(new RootfsView(root))).toEqual({ ok: true });
  });
});

describe('each lint is tripped by a tree built for it', () => {
  const cases: Array<[string, (root: string) => void, RegExp]> = [
    [
      'var-run',
      (root) => {
        rmSync(join(root, 'var/run'));
        dir(root, 'var/run');
      },
      /^Not a symlink: var\/run$/m,
    ],
    ['etc-usretc', (root) => dir(root, 'usr/etc'), /Found \/usr\/etc/],
    ['bootc-kargs', (root) => file(root, 'usr/lib/bootc/kargs.d/20-bad.toml', 'kargs = "not-a-list"\n'), /20-bad\.toml: `kargs` must be an array/],
    ['bootc-kargs', (root) => file(root, 'usr/lib/bootc/kargs.d/30-unknown.toml', 'kargs = []\nfoo = 1\n'), /unknown key `foo`/],
    ['kernel', (root) => file(root, 'usr/lib/modules/6.2.0-1-amd64/vmlinuz', 'k2'), /^Multiple kernels found\n\/usr\/lib\/modules\/6\.1\.0-1-amd64\n\/usr\/lib\/modules\/6\.2\.0-1-amd64$/],
    ['kernel', (root) => rmSync(join(root, 'usr/lib/modules'), { recursive: true }), /^No kernel found/],
    ['kernel', (root) => rmSync(join(root, 'usr/lib/modules/6.1.0-1-amd64/initramfs.img')), /No initramfs/],
    [
      'initramfs-systemd',
      (root) => file(root, 'usr/lib/modules/6.1.0-1-amd64/initramfs.img', Buffer.from(writeNewcCpio(scriptInitrd))),
      /initramfs\.img is not systemd-based \(its \/init is a shell script\).*dracut --force/,
    ],
    ['initramfs-systemd', (root) => file(root, 'usr/lib/modules/6.1.0-1-amd64/initramfs.img', 'not an initramfs'), /initramfs\.img cannot be unpacked/],
    ['bootc-tool', (root) => rmSync(join(root, 'usr/bin/bootc')), /No \/usr\/bin\/bootc: .*never update itself .*COPY --from=localhost\/bootc-ts:latest \/ \//],
    ['utf8', (root) => writeFileSync(Buffer.concat([Buffer.from(join(root, 'etc') + '/bad-'), Buffer.from([0xff, 0xfe])]), 'x'), /non-UTF-8/],
    ['utf8', (root) => symlinkSync(Buffer.from([0x2f, 0xc3, 0x28]), join(root, 'etc/badlink')), /non-UTF-8/],
    ['api-base-directories', (root) => rmSync(join(root, 'proc'), { recursive: true }), /Missing API filesystem base directory: \/proc/],
    [
      'api-base-directories',
      (root) => {
        rmSync(join(root, 'tmp'), { recursive: true });
        symlinkSync('var/tmp', join(root, 'tmp'));
      },
      /\/tmp/,
    ],
    ['baseimage-root', (root) => file(root, 'sysroot/ostree/repo', 'x'), /\/sysroot is reserved/],
    ['baseimage-root', (root) => file(root, 'bootc/objects/ab', 'x'), /\/bootc is reserved/],
    ['baseimage-root', (root) => file(root, 'sysroot', 'x'), /must be absent or an empty directory/],
    ['var-log', (root) => file(root, 'var/log/dpkg.log', 'installed'), /Found non-empty logfiles/],
    ['var-tmpfiles', (root) => dir(root, 'var/lib/foo'), /tmpfiles\.d does not create/],
    ['var-tmpfiles', (root) => file(root, 'var/stray.txt', 'x'), /tmpfiles\.d does not create/],
    ['sysusers', (root) => file(root, 'etc/passwd', 'root:x:0:0::/root:/bin/sh\nmessagebus:x:100:101::/:/usr/sbin/nologin\n'), /without a sysusers\.d declaration/],
    ['nonempty-boot', (root) => file(root, 'boot/vmlinuz-6.1.0', 'k'), /Found non-empty \/boot/],
    ['nonempty-boot', (root) => rmSync(join(root, 'boot'), { recursive: true }), /No \/boot directory/],
    ['nonempty-run-tmp', (root) => file(root, 'run/lock/x.pid', '1'), /Found content in \/run or \/tmp/],
    ['nonempty-run-tmp', (root) => dir(root, 'tmp/leftover'), /Found content in \/run or \/tmp/],
    ['buildah-injected', (root) => file(root, 'etc/resolv.conf', ''), /injected by the build system/],
  ];

  it.each(cases)('%s: %s', async (name, mutate, message) => {
    const root = goodTree();
    const good = await lint(name).check(new RootfsView(root));
    expect(good, 'the untouched tree passes').toEqual({ ok: true });
    mutate(root);
    const outcome = await lint(name).check(new RootfsView(root));
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.message + '\n' + (outcome.items ?? []).join('\n')).toMatch(message);
  });

  it('names the offending paths', async () => {
    const root = goodTree();
    file(root, 'var/log/apt/history.log', 'x');
    file(root, 'var/log/empty.log', '');
    const outcome = await lint('var-log').check(new RootfsView(root));
    expect(outcome).toEqual({ ok: false, message: 'Found non-empty logfiles', items: ['/var/log/apt/history.log'] });
  });

  it('accepts a shipped UKI in place of vmlinuz, and an EFI/ directory in /boot', async () => {
    const root = goodTree();
    rmSync(join(root, 'usr/lib/modules'), { recursive: true });
    file(root, 'boot/EFI/Linux/6.1.0-1-amd64.efi', 'uki');
    expect(await lint('kernel').check(new RootfsView(root))).toEqual({ ok: true });
    expect(await lint('nonempty-boot').check(new RootfsView(root))).toEqual({ ok: true });
  });

  it('ignores podman\'s stub-resolv.conf in /run', async () => {
    const root = goodTree();
    file(root, 'run/systemd/resolve/stub-resolv.conf', 'nameserver 10.0.2.3\n');
    expect(await lint('nonempty-run-tmp').check(new RootfsView(root))).toEqual({ ok: true });
  });
});

describe('the report', () => {
  it('prints a fatal failure and ends in "Checks failed: N"', async () => {
    const root = goodTree();
    rmSync(join(root, 'var/run'));
    dir(root, 'var/run');
    let out = '';
    const err = await lintRootfs(root, {}, (t) => (out += t)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe('Checks failed: 1');
    expect(out).toBe(`Failed lint: var-run: Not a symlink: var/run\nChecks passed: ${LINTS.length - 2}\nChecks skipped: 1\n`);
  });

  it('prints a warning without failing, and fails on it with --fatal-warnings', async () => {
    const root = goodTree();
    file(root, 'var/log/a.log', 'x');
    let out = '';
    await lintRootfs(root, {}, (t) => (out += t));
    expect(out).toContain('Lint warning: var-log: Found non-empty logfiles:\n  /var/log/a.log\n');
    expect(out).toMatch(/Warnings: 1\n$/);
    await expect(lintRootfs(root, { fatalWarnings: true }, () => undefined)).rejects.toThrow('Checks failed: 1');
  });

  it('counts --skip as skipped and refuses an unknown lint name', async () => {
    const root = goodTree();
    file(root, 'var/log/a.log', 'x');
    const report = await runLints(new RootfsView(root), { skip: ['var-log', 'kernel'] });
    expect(report.lines).toEqual([`Checks passed: ${LINTS.length - 3}`, 'Checks skipped: 3']);
    await expect(runLints(new RootfsView(root), { skip: ['no-such-lint'] })).rejects.toThrow(/unknown lint "no-such-lint"/);
  });

  it('truncates long lists unless --no-truncate', () => {
    const items = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    expect(renderOutcome('Found', items, false)).toBe('Found:\n  a\n  b\n  c\n  d\n  e\n  ...and 2 more');
    expect(renderOutcome('Found', items, true).split('\n')).toHaveLength(8);
    expect(renderOutcome('Plain', undefined, false)).toBe('Plain');
  });

  it('--list is YAML with name, type, description and root-type', () => {
    const listed = parseYaml(renderLintList()) as Array<Record<string, string>>;
    expect(listed.map((l) => l.name)).toEqual(LINTS.map((l) => l.name));
    expect(listed.find((l) => l.name === 'var-tmpfiles')).toMatchObject({ type: 'warning', 'root-type': 'running' });
    expect(listed.find((l) => l.name === 'kernel')).toMatchObject({ type: 'fatal' });
    expect(listed.find((l) => l.name === 'kernel')).not.toHaveProperty('root-type');
  });
});

describe('byte paths for the utf8 walk', () => {
  it('joins below the running root and below a directory', () => {
    expect(childPathBytes(Buffer.from('/'), Buffer.from('usr')).toString()).toBe('/usr');
    expect(childPathBytes(Buffer.from('/x/rootfs'), Buffer.from([0xff])).equals(Buffer.from([...Buffer.from('/x/rootfs/'), 0xff]))).toBe(true);
  });
});

describe('config parsing for lints', () => {
  it('tmpfiles.d paths', () => {
    const paths = tmpfilesPaths(new Map([['a.conf', '# c\nd /var/lib/x 0755 - - -\nL+ /var/run/ - - - - ../run\n\nq /var/tmp 1777 root root 30d\n']]));
    expect([...paths]).toEqual(['/var/lib/x', '/var/run', '/var/tmp']);
  });

  it('sysusers.d users and groups', () => {
    const declared = sysusersDeclared(new Map([['a.conf', 'u root 0 "Super User" /root\nu svc 900:adm\ng wheel -\nm svc wheel\n']]));
    expect([...declared.users]).toEqual(['root', 'svc']);
    expect([...declared.groups]).toEqual(['root', 'wheel']);
  });
});
