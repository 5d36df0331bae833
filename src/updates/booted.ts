/**
 * Which deployment is booted, read the same way by `bootc status` (which must answer fast,
 * before loading the deployments code) and by the update commands (deployments.ts): the
 * `bootc.deploy=` kernel argument, else the record prepare-root wrote in the initrd.
 */
import { readFile } from 'node:fs/promises';
import { DEPLOY_KARG } from '../boot/prepare-root.js';

export const BOOTED_RECORD_PATH = '/run/bootc/booted-deployment';

export interface SysrootLocations {
  /** The physical root; the addon initrd binds it at /sysroot. */
  sysroot: string;
  /** Where the ESP is mounted (fstab written by install). */
  boot: string;
  cmdlinePath: string;
  /**
   * `<stateroot>/<id>` written by prepare-root in the initrd: the booted deployment when the
   * command line names only a selector (sealed UKI). Absent: the command line alone decides.
   */
  bootedRecordPath?: string;
}

export const HOST_LOCATIONS: SysrootLocations = {
  sysroot: '/sysroot',
  boot: '/boot',
  cmdlinePath: '/proc/cmdline',
  bootedRecordPath: BOOTED_RECORD_PATH,
};

/** `<stateroot>/<id>` of the booted deployment, or null on a system not booted by bootc. */
export function bootedDeployment(cmdline: string): { stateroot: string; id: string } | null {
  for (const arg of cmdline.trim().split(/\s+/)) {
    if (!arg.startsWith(`${DEPLOY_KARG}=`)) continue;
    const value = arg.slice(DEPLOY_KARG.length + 1);
    const slash = value.indexOf('/');
    if (slash <= 0 || slash === value.length - 1) return null;
    return { stateroot: value.slice(0, slash), id: value.slice(slash + 1) };
  }
  return null;
}

/**
 * The booted deployment: `bootc.deploy=` on the command line, else the record prepare-root
 * wrote in the initrd (a sealed UKI's command line names only a selector). Only a bootc
 * initrd writes that record, so a foreign system still has neither.
 */
export async function readBootedDeployment(loc: { cmdlinePath: string; bootedRecordPath?: string }): Promise<{ stateroot: string; id: string } | null> {
  const fromCmdline = bootedDeployment(await readFile(loc.cmdlinePath, 'utf8'));
  if (fromCmdline || !loc.bootedRecordPath) return fromCmdline;
  let text: string;
  try {
    text = await readFile(loc.bootedRecordPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return bootedDeployment(`${DEPLOY_KARG}=${text.trim()}`);
}
