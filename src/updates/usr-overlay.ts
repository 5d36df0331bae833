/**
 * `bootc usr-overlay [--read-only]` (alias `usroverlay`; upstream: `ostree admin unlock`): a
 * writable overlayfs on /usr whose changes live on a tmpfs under /run and are gone at the
 * next boot. The deployment's tree underneath is never touched; /etc and /var are not
 * affected. `bootc status` reports it as `usrOverlay`.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';
import { run } from '../core/exec.js';
import { readMountinfo } from '../core/mountinfo.js';
import { HOST_LOCATIONS, loadDeployments, requireBooted, type SysrootLocations } from './deployments.js';
import { describeUsrOverlay, usrOverlayOf } from './status.js';

export interface UsrOverlayOptions {
  readOnly?: boolean;
  locations?: SysrootLocations;
  /** Tests: the directory to overlay and where its upper layer goes (a tmpfs on a real system). */
  usr?: string;
  stateDir?: string;
}

export async function mountUsrOverlay(options: UsrOverlayOptions = {}): Promise<string> {
  const usr = options.usr ?? '/usr';
  const stateDir = options.stateDir ?? '/run/bootc/usr-overlay';
  requireBooted(await loadDeployments(options.locations ?? HOST_LOCATIONS));
  const existing = usrOverlayOf(await readMountinfo(), usr);
  if (existing) {
    throw new UserError(`${usr} already has an overlay (${describeUsrOverlay(existing)})`, {
      hint: 'it stays until the next boot; reboot to drop it and its changes',
    });
  }
  // What an interrupted earlier attempt left is not in use (no overlay is mounted).
  await rm(stateDir, { recursive: true, force: true });
  const upper = join(stateDir, 'upper');
  const work = join(stateDir, 'work');
  await mkdir(upper, { recursive: true, mode: 0o755 });
  await mkdir(work, { recursive: true, mode: 0o700 });
  await run({
    description: `Mounting an overlay on ${usr}`,
    argv: ['mount', '-t', 'overlay', 'overlay', '-o', `${options.readOnly ? 'ro,' : ''}lowerdir=${usr},upperdir=${upper},workdir=${work}`, usr],
    hint: 'the kernel needs overlayfs (modprobe overlay)',
  });
  return options.readOnly
    ? `A read-only overlay is mounted on ${usr}; it can be remounted read/write (mount -o remount,rw ${usr}). It is gone at the next boot.\n`
    : `A writable overlay is mounted on ${usr}. Changes there are kept in memory and discarded at the next boot.\n`;
}
