/**
 * A UKI for the one kernel of an image tree (a deployment, or the rootfs of `bootc container
 * ukify`): find the kernel, write its combined initrd (image initramfs + our addon) to a
 * work directory beside the output, and assemble it (src/uki takes the paths).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { withContext } from '../core/errors.js';
import { buildUki, checkUkiInputs, type BuildUkiOptions } from '../uki/uki.js';
import { findKernel } from './kernel.js';
import { writeCombinedInitrd } from './prepare-root.js';

export async function buildTreeUki(options: Omit<BuildUkiOptions, 'kernel' | 'initrd'>): Promise<void> {
  const context = `Building the unified kernel image ${options.output}`;
  const kernel = await withContext(context, async () => {
    await checkUkiInputs(options);
    return findKernel(options.rootfs);
  });
  const work = await mkdtemp(join(dirname(options.output), `.${basename(options.output)}.initrd-`));
  try {
    const initrd = join(work, 'initrd');
    await withContext(context, () => writeCombinedInitrd(kernel.initramfs, initrd));
    // buildUki names the step itself.
    await buildUki({ ...options, kernel, initrd });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
