/** The `bootc install` verbs through the real entry point: refusals that need no disk. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { fixturesHint, fixturesIndexPath, ociLayoutRef } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsLoopDevices, needsRoot } from '../../support/tier.js';
import { testDir, DISK_TMP } from '../../support/temp-tree.js';

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

describe.skipIf(explainSkip('privileged', needsLoopDevices() ?? needsFile(fixturesIndexPath, fixturesHint)))('bootc install to-disk interrupted', () => {
  it('Ctrl-C during the import unmounts, detaches, and says what state the disk is in', async () => {
    const tmp = testDir('install-interrupt', { under: DISK_TMP });
    const file = join(tmp, 'disk.raw');
    execFileSync('truncate', ['-s', '4G', file]);
    const child = execa('node', ['--import', 'tsx', 'src/cli.ts', 'install', 'to-disk', '--via-loopback', file,
      '--source-imgref', ociLayoutRef('v1'), '--store', join(tmp, 'store')], { reject: false, all: true, env: { NO_COLOR: '1' } });
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.all!.on('data', (c: Buffer) => {
        seen += c.toString();
        if (/Importing layer 1\//.test(seen)) resolve();
      });
      child.once('exit', () => reject(new Error(`the install ended before the import:\n${seen}`)));
    });
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(r.all).toContain(`${file}: the system was written but not finalised; it may not boot; run the install again with --wipe`);
    expect(execFileSync('losetup', ['-j', file], { encoding: 'utf8' })).toBe('');
    expect(execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' })).not.toMatch(/\/run\/bootc\/mounts\/rootfs-/);
  }, 300_000);
});
