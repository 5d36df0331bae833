/**
 * A staged physical root for the disk and boot tests, made from the fixture:v1 rootfs the
 * way the deploy step lays it out (DESIGN.md "On-disk format"):
 *
 *   <dir>/bootc/deploy/default/d1/   the OS tree, with empty var/ and sysroot/ mountpoints
 *   <dir>/bootc/state/default/var/   the image's /var content
 *
 * The repo's systemd/ units and scripts are laid over the tree as the tool layer would, so
 * the tests exercise this checkout's boot-complete unit even with fixtures built before it.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../../src/core/exec.js';
import { v1RootfsDir } from '../../../fixtures/paths.js';

export const STATEROOT = 'default';
export const DEPLOYMENT_ID = 'd1';

const repoSystemdDir = fileURLToPath(new URL('../../../systemd', import.meta.url));

export interface StagedSysroot {
  sysrootDir: string;
  deploymentDir: string;
  varDir: string;
}

export async function stageFixtureSysroot(dir: string): Promise<StagedSysroot> {
  const deploymentDir = join(dir, 'bootc/deploy', STATEROOT, DEPLOYMENT_ID);
  const stateDir = join(dir, 'bootc/state', STATEROOT);
  await mkdir(join(dir, 'bootc/deploy', STATEROOT), { recursive: true });
  await mkdir(stateDir, { recursive: true });
  await run({ description: 'Copying the fixture:v1 rootfs', argv: ['cp', '-a', v1RootfsDir, deploymentDir] });
  await run({ description: 'Moving /var to the stateroot', argv: ['mv', join(deploymentDir, 'var'), join(stateDir, 'var')] });
  await mkdir(join(deploymentDir, 'var'));
  await mkdir(join(deploymentDir, 'sysroot'));
  await run({
    description: 'Laying the repo units over the deployment',
    argv: [
      'sh',
      '-c',
      'set -e; cp -a "$1/." "$2/usr/lib/systemd/system/"; mkdir -p "$2/usr/lib/bootc"; ' +
        'mv "$2"/usr/lib/systemd/system/*.sh "$2/usr/lib/bootc/"; chown -R 0:0 "$2/usr/lib/systemd/system" "$2/usr/lib/bootc"',
      'sh',
      repoSystemdDir,
      deploymentDir,
    ],
  });
  return { sysrootDir: dir, deploymentDir, varDir: join(stateDir, 'var') };
}
