/**
 * The one-kernel rule, in one place: exactly one `/usr/lib/modules/<kver>/vmlinuz`, with its
 * `initramfs.img`. Checked on paths (install on what it read from the layers, deploy on the
 * tree index before anything is checked out) and on the files of a tree (findKernel, for the
 * boot entry or the UKI).
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

/**
 * The one-kernel rule: exactly one /usr/lib/modules/<kver>/vmlinuz, with its initramfs.img.
 * `filePaths` are the image's regular files (relative, no leading slash); any superset of
 * the kernel files will do, so install can check a few paths read straight from the layers.
 */
export function kernelVersionOf(filePaths: Iterable<string>, subject: string): string {
  // `subject` starts the messages: "image quay.io/x:1", "the image".
  const files = new Set(filePaths);
  const kernels = [...files]
    .filter((p) => p.startsWith(`${MODULES_DIR}/`) && p.endsWith('/vmlinuz'))
    .map((p) => p.slice(MODULES_DIR.length + 1, -'/vmlinuz'.length))
    .filter((kver) => !kver.includes('/'));
  if (kernels.length === 0) {
    throw new UserError(`${subject} has no kernel: /usr/lib/modules/<kver>/vmlinuz is missing`, {
      hint: 'a bootable container image carries its kernel and initramfs in /usr/lib/modules/<kver>/ (install the kernel package in the image build)',
    });
  }
  if (kernels.length > 1) {
    throw new UserError(`${subject} has more than one kernel: ${kernels.sort().join(', ')}`, {
      hint: 'keep exactly one kernel in /usr/lib/modules of the image',
    });
  }
  const kernelVersion = kernels[0]!;
  if (!files.has(`${MODULES_DIR}/${kernelVersion}/initramfs.img`)) {
    throw new UserError(`${subject} has no initramfs: /usr/lib/modules/${kernelVersion}/initramfs.img is missing`, {
      hint: 'generate it in the image build next to vmlinuz (e.g. `dracut --kver <kver> /usr/lib/modules/<kver>/initramfs.img`)',
    });
  }
  return kernelVersion;
}


/** The one kernel of a deployment (or image tree), by the rule above, on its files. */
export async function findKernel(treeDir: string): Promise<KernelFiles> {
  const modules = join(treeDir, MODULES_DIR);
  let versions: string[];
  try {
    versions = (await readdir(modules, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    versions = [];
  }
  const present: string[] = [];
  for (const version of versions) {
    for (const name of ['vmlinuz', 'initramfs.img']) {
      if (await isFile(join(modules, version, name))) present.push(`${MODULES_DIR}/${version}/${name}`);
    }
  }
  const kernelVersion = kernelVersionOf(present, 'the image');
  return { kernelVersion, vmlinuz: join(modules, kernelVersion, 'vmlinuz'), initramfs: join(modules, kernelVersion, 'initramfs.img') };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

