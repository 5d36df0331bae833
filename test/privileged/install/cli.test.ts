/** The `bootc install` verbs through the real entry point: refusals that need no disk. */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsRoot } from '../../support/tier.js';

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('setpriv'));

const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, env: { NO_COLOR: '1' } });
const cliAsNobody = (...args: string[]) =>
  execa('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'node', '--import', 'tsx', 'src/cli.ts', ...args], {
    reject: false,
    env: { NO_COLOR: '1', HOME: '/tmp' },
  });

describe.skipIf(skip)('bootc install (CLI)', () => {
  it('to-disk and to-filesystem say they need root, before looking at the target', async () => {
    const disk = await cliAsNobody('install', 'to-disk', '/dev/does-not-exist', '--source-imgref', 'oci:/nowhere:v1');
    expect(disk.exitCode).toBe(1);
    expect(disk.stderr).toContain('bootc install to-disk needs root');
    expect(disk.stderr).toContain('hint: run it as root');
    const fs = await cliAsNobody('install', 'to-filesystem', '/mnt', '--source-imgref', 'oci:/nowhere:v1');
    expect(fs.exitCode).toBe(1);
    expect(fs.stderr).toContain('bootc install to-filesystem needs root');
  });

  it('asks for --source-imgref', async () => {
    const r = await cli('install', 'to-disk', '/dev/loop-none');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('error: no image to install');
    expect(r.stderr).toContain('--source-imgref');
  });

  it('a bare `bootc install` is a usage error (left for the interactive installer)', async () => {
    const r = await cli('install');
    expect(r.exitCode).toBe(2);
  });

  it('refuses a device that does not exist, naming it', async () => {
    const r = await cli('install', 'to-disk', '/dev/does-not-exist', '--source-imgref', 'oci:/nowhere:v1');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('/dev/does-not-exist does not exist');
  });
});
