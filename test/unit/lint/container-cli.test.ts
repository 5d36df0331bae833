/** The `bootc container …` verbs through the real entry point (tsx), on trees built here. */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { writeNewcCpio } from '../../../src/boot/cpio.js';
import { systemdInitrd } from '../../support/initrd.js';
import { suiteDir } from '../../support/temp-tree.js';

const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, env: { NO_COLOR: '1' } });

const root = suiteDir('container-cli', {
  files: {
    ...Object.fromEntries(['dev', 'proc', 'sys', 'run', 'tmp', 'var/log', 'boot', 'etc'].map((d) => [d, { directory: true } as const])),
    'var/run': { symlink: '../run' },
    'usr/lib/modules/6.1.0-1-amd64/vmlinuz': 'k',
    'usr/lib/modules/6.1.0-1-amd64/initramfs.img': writeNewcCpio(systemdInitrd),
    'usr/bin/bootc': '#!/bin/sh\n',
    'usr/lib/bootc/kargs.d/10-console.toml': 'kargs = ["console=ttyS0"]\n',
  },
});

describe('bootc container (CLI)', () => {
  it('lint exits 0 on a good tree and 1 with "Checks failed" on a broken one', async () => {
    const good = await cli('container', 'lint', '--rootfs', root.path);
    expect(good.exitCode, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toMatch(/^Checks passed: 14\nChecks skipped: 1\n?$/);
    mkdirSync(join(root.path, 'usr/etc'));
    try {
      const bad = await cli('container', 'lint', '--rootfs', root.path);
      expect(bad.exitCode).toBe(1);
      expect(bad.stdout).toMatch(/^Failed lint: etc-usretc: /m);
      expect(bad.stderr).toMatch(/^error: Checks failed: 1$/m);
    } finally {
      rmSync(join(root.path, 'usr/etc'), { recursive: true });
    }
  });

  it('lint --list prints every lint as YAML', async () => {
    const r = await cli('container', 'lint', '--list');
    expect(r.exitCode).toBe(0);
    expect((parseYaml(r.stdout) as Array<{ name: string }>).map((l) => l.name)).toContain('baseimage-root');
  });

  it('inspect --json', async () => {
    const r = await cli('container', 'inspect', '--rootfs', root.path, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ kargs: ['console=ttyS0'], kernel: { version: '6.1.0-1-amd64', unified: false } });
  });

  it('ukify needs --output, and --sign-key goes with --sign-cert', async () => {
    const noOutput = await cli('container', 'ukify', '--rootfs', root.path);
    expect(noOutput.exitCode).toBe(2);
    expect(noOutput.stderr).toContain('Missing required argument: output');
    const half = await cli('container', 'ukify', '--rootfs', root.path, '--output', join(root.path, 'x.efi'), '--sign-key', 'k.pem');
    expect(half.exitCode).toBe(1);
    expect(half.stderr).toContain('--sign-key and --sign-cert go together');
    const noDir = await cli('container', 'ukify', '--rootfs', root.path, '--output', join(root.path, 'missing/x.efi'));
    expect(noDir.exitCode).toBe(1);
    expect(noDir.stderr).toMatch(/missing is not a directory/);
  });

  it('internals is hidden from --help but runs', async () => {
    const help = await cli('--help');
    expect(help.stdout).toContain('container');
    expect(help.stdout).not.toContain('internals');
    const r = await cli('internals', 'uki', 'inspect', join(root.path, 'usr/lib/modules/6.1.0-1-amd64/vmlinuz'));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/is not a valid PE\/COFF image/);
  });
});
