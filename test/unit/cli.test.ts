import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';

// Runs the real entry point (through tsx, so the test does not depend on a prior build).
const cli = (...args: string[]) =>
  execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, env: { NO_COLOR: '1' } });

describe('bootc CLI', () => {
  it('--version prints the package version', async () => {
    const r = await cli('--version');
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('--help describes the tool and exits 0', async () => {
    const r = await cli('--help');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.replace(/\s+/g, ' ')).toContain('from a bootable container image');
  });

  it('an unknown verb is a usage error (exit 2) with a hint', async () => {
    const r = await cli('frobnicate');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('error: Unknown argument: frobnicate');
    expect(r.stderr).toContain('hint: run with --help');
  });
});

describe('bootc CLI usage errors stop before the verb runs', () => {
  it('a missing positional is a usage error, not a crash', async () => {
    const r = await cli('image', 'build-disk');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('error: Not enough non-option arguments');
    expect(r.stderr).not.toContain('bug');
  });

  it('--karg takes one value: the path after it stays the positional (issue: it was taken as a second karg)', async () => {
    const target = '/run/bootc-cli-test-not-a-mount-point';
    const r = await cli('install', 'to-filesystem', '--source-imgref', 'oci:/nonexistent/layout:v1', '--karg', 'luks.uuid=U', target);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).not.toContain('Not enough non-option arguments');
    // Refused by the install itself, which got the path: as root for not being a mount point.
    expect(r.stderr).toMatch(process.getuid?.() === 0 ? new RegExp(`${target} is not a mount point`) : /needs root/);
  });
});
