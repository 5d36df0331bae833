/**
 * What an install needs to know about the image before touching the disk, from one pass
 * over its layers: the install configuration fragments it ships, and whether it has
 * exactly one kernel with an initramfs (the same rule as deploy's checkBootableTree, which
 * runs again on the imported tree).
 */
import { UserError } from '../core/errors.js';
import type { PulledImage } from '../oci/pull.js';
import { formatReference } from '../oci/reference.js';
import { INSTALL_CONFIG_IMAGE_DIR, type InstallConfigFile } from './config.js';
import { filesInDirectory, readImageFiles, type ImageFiles } from './image-files.js';

const MODULES = 'usr/lib/modules';
const KERNEL_FILE = /^usr\/lib\/modules\/[^/]+\/(vmlinuz|initramfs\.img)$/;
const CONFIG_FILE = new RegExp(`^${INSTALL_CONFIG_IMAGE_DIR.replace(/\//g, '\\/')}\\/[^/]+\\.toml$`);

export interface ImageFacts {
  installConfigFiles: InstallConfigFile[];
  kernelVersion: string;
}

/** The kernel rule on the selected paths; throws with the image named. */
export function kernelOf(files: ImageFiles, imageName: string): string {
  const kernels = [...files.keys()].filter((p) => p.endsWith('/vmlinuz')).map((p) => p.slice(MODULES.length + 1, -'/vmlinuz'.length));
  if (kernels.length === 0) {
    throw new UserError(`image ${imageName} has no kernel: /usr/lib/modules/<kver>/vmlinuz is missing`, {
      hint: 'a bootable container image carries its kernel and initramfs in /usr/lib/modules/<kver>/ (install the kernel package in the image build)',
    });
  }
  if (kernels.length > 1) {
    throw new UserError(`image ${imageName} has more than one kernel: ${kernels.sort().join(', ')}`, {
      hint: 'keep exactly one kernel in /usr/lib/modules of the image',
    });
  }
  const kver = kernels[0]!;
  if (!files.has(`${MODULES}/${kver}/initramfs.img`)) {
    throw new UserError(`image ${imageName} has no initramfs: /usr/lib/modules/${kver}/initramfs.img is missing`, {
      hint: 'generate it in the image build next to vmlinuz (e.g. `dracut --kver <kver> /usr/lib/modules/<kver>/initramfs.img`)',
    });
  }
  return kver;
}

export async function readImageFacts(pulled: PulledImage): Promise<ImageFacts> {
  const files = await readImageFiles(pulled, {
    select: (p) => KERNEL_FILE.test(p) || CONFIG_FILE.test(p),
    readText: (p) => CONFIG_FILE.test(p),
  });
  return {
    installConfigFiles: filesInDirectory(files, INSTALL_CONFIG_IMAGE_DIR).map((f) => ({ path: `/${f.path}`, text: f.text })),
    kernelVersion: kernelOf(files, formatReference(pulled.reference)),
  };
}
