/**
 * `bootc usr-overlay` on real mounts: an overlay on a directory standing in for /usr, its
 * upper layer on a tmpfs standing in for /run. Writes land in the upper layer only; status
 * sees the overlay; a second call is refused; --read-only mounts it read-only.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readMountinfo } from '../../../src/core/mountinfo.js';
import { renderOrigin } from '../../../src/deploy/origin.js';
import type { SysrootLocations } from '../../../src/updates/deployments.js';
import { usrOverlayOf } from '../../../src/updates/status.js';
import { mountUsrOverlay } from '../../../src/updates/usr-overlay.js';
import { testOrigin } from '../../support/origin.js';
import { explainSkip, needsRoot } from '../../support/tier.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot());

describe.skipIf(skip)('bootc usr-overlay', () => {
  let tmp = '';
  let usr = '';
  let run = '';
  let loc: SysrootLocations;
  const mountedAt = async (path: string): Promise<boolean> => (await readMountinfo()).some((m) => m.mountPoint === path);
  const unmountAll = async (path: string): Promise<void> => {
    while (await mountedAt(path)) execFileSync('umount', [path]);
  };

  const scratch = suiteDir('usr-overlay', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
    usr = join(tmp, 'usr');
    run = join(tmp, 'run');
    mkdirSync(join(usr, 'bin'), { recursive: true });
    writeFileSync(join(usr, 'bin', 'tool'), 'from the image\n');
    mkdirSync(run);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', run]);
    loc = { sysroot: join(tmp, 'sysroot'), boot: join(tmp, 'boot'), cmdlinePath: join(tmp, 'cmdline') };
    mkdirSync(join(loc.sysroot, 'bootc/deploy/default'), { recursive: true });
    writeFileSync(join(loc.sysroot, 'bootc/deploy/default/aaaaaaaaaaaa.0.origin'), renderOrigin(testOrigin('aaaaaaaaaaaa.0')));
    writeFileSync(loc.cmdlinePath, 'root=UUID=x rw bootc.deploy=default/aaaaaaaaaaaa.0\n');
  });
  afterEach(async () => {
    await unmountAll(usr);
  });
  afterAll(async () => {
    if (!tmp) return;
    await unmountAll(usr);
    await unmountAll(run);
  });

  it('mounts a writable overlay whose changes stay in the tmpfs; a second call is refused', async () => {
    const text = await mountUsrOverlay({ usr, stateDir: join(run, 'usr-overlay'), locations: loc });
    expect(text).toContain(`A writable overlay is mounted on ${usr}`);
    writeFileSync(join(usr, 'bin', 'tool'), 'patched\n');
    writeFileSync(join(usr, 'bin', 'new'), 'added\n');
    expect(readFileSync(join(usr, 'bin', 'tool'), 'utf8')).toBe('patched\n');
    expect(readFileSync(join(run, 'usr-overlay/upper/bin/new'), 'utf8')).toBe('added\n');
    expect(usrOverlayOf(await readMountinfo(), usr)).toEqual({ accessMode: 'readWrite', persistence: 'transient' });
    await expect(mountUsrOverlay({ usr, stateDir: join(run, 'usr-overlay'), locations: loc })).rejects.toThrow(`${usr} already has an overlay (transient, read/write)`);

    await unmountAll(usr);
    // The image's tree underneath never changed.
    expect(readFileSync(join(usr, 'bin', 'tool'), 'utf8')).toBe('from the image\n');
    expect(existsSync(join(usr, 'bin', 'new'))).toBe(false);
  });

  it('--read-only mounts it read-only', async () => {
    expect(await mountUsrOverlay({ usr, stateDir: join(run, 'usr-overlay'), locations: loc, readOnly: true })).toContain('read-only overlay');
    expect(usrOverlayOf(await readMountinfo(), usr)).toEqual({ accessMode: 'readOnly', persistence: 'transient' });
    expect(() => writeFileSync(join(usr, 'bin', 'new'), 'x')).toThrow(/EROFS/);
  });

  it('is refused on a system not booted from a deployment, with nothing mounted', async () => {
    writeFileSync(loc.cmdlinePath, 'root=UUID=x rw\n');
    try {
      await expect(mountUsrOverlay({ usr, stateDir: join(run, 'usr-overlay'), locations: loc })).rejects.toThrow(/not deployed via bootc/);
      expect(await mountedAt(usr)).toBe(false);
    } finally {
      writeFileSync(loc.cmdlinePath, 'root=UUID=x rw bootc.deploy=default/aaaaaaaaaaaa.0\n');
    }
  });
});
