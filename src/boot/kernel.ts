/**
 * The one kernel of a deployment or image tree: `/usr/lib/modules/<kver>/vmlinuz` with its
 * `initramfs.img`, found on the files themselves (deploy.ts checks the same rule on a tree
 * index, before anything is checked out).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';

export const MODULES_DIR = 'usr/lib/modules';

export interface KernelFiles {
  kernelVersion: string;
  vmlinuz: string;
  initramfs: string;
}

/** The one kernel of a deployment (or image tree). */
export async function findKernel(treeDir: string): Promise<KernelFiles> {
  const modules = join(treeDir, MODULES_DIR);
  let versions: string[];
  try {
    versions = (await readdir(modules, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    versions = [];
  }
  const withKernel: string[] = [];
  for (const version of versions) {
    if (await isFile(join(modules, version, 'vmlinuz'))) withKernel.push(version);
  }
  if (withKernel.length === 0) {
    throw new UserError('the image has no kernel: no /usr/lib/modules/<kver>/vmlinuz', {
      hint: 'a bootable container image carries its kernel and initramfs in /usr/lib/modules/<kver>/',
    });
  }
  if (withKernel.length > 1) {
    throw new UserError(`the image has more than one kernel: ${withKernel.sort().join(', ')} in /usr/lib/modules`, {
      hint: 'keep exactly one kernel in the image',
    });
  }
  const kernelVersion = withKernel[0] as string;
  const initramfs = join(modules, kernelVersion, 'initramfs.img');
  if (!(await isFile(initramfs))) {
    throw new UserError(`the image has no initramfs: /usr/lib/modules/${kernelVersion}/initramfs.img is missing`, {
      hint: 'generate it in the image build (e.g. dracut with the systemd module) next to vmlinuz',
    });
  }
  return { kernelVersion, vmlinuz: join(modules, kernelVersion, 'vmlinuz'), initramfs };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

