/**
 * `bootc container inspect`: what bootc will boot from an image — its kernel (a plain
 * vmlinuz, or a UKI the image ships) and the kernel arguments of its kargs.d — in
 * upstream's document shape `{kargs: [...], kernel: {version, unified}}`.
 */
import { stringify as toYaml } from 'yaml';
import { UserError } from '../core/errors.js';
import { MODULES_DIR } from '../boot/kernel.js';
import { hostRustArch, kargsFromKargsD, loadKargsD, type RustArch } from '../boot/kargs.js';
import { RootfsView } from './rootfs-view.js';

export interface ContainerKernel {
  /** The kernel version; for a shipped UKI in /boot/EFI/Linux, its file name without `.efi`. */
  version: string;
  /** True when the image boots through a UKI it ships. */
  unified: boolean;
}

export interface ContainerInspection {
  kargs: string[];
  kernel: ContainerKernel | null;
}

export type ContainerInspectFormat = 'humanreadable' | 'yaml' | 'json';

/** The image's kernel: a shipped UKI wins over vmlinuz, as it is what would boot. */
export async function findContainerKernel(root: RootfsView): Promise<ContainerKernel | null> {
  const modules = ((await root.readdir(MODULES_DIR)) ?? []).filter((e) => e.isDirectory()).map((e) => e.name);
  for (const kver of modules) {
    if ((await root.lstat(`${MODULES_DIR}/${kver}/${kver}.efi`))?.isFile()) return { version: kver, unified: true };
  }
  const ukis = ((await root.readdir('boot/EFI/Linux')) ?? []).filter((e) => e.isFile() && e.name.endsWith('.efi'));
  if (ukis.length > 0) return { version: ukis[0]!.name.slice(0, -'.efi'.length), unified: true };
  for (const kver of modules) {
    if ((await root.lstat(`${MODULES_DIR}/${kver}/vmlinuz`))?.isFile()) return { version: kver, unified: false };
  }
  return null;
}

export async function inspectContainer(rootfs: string, arch: RustArch = hostRustArch()): Promise<ContainerInspection> {
  const root = new RootfsView(rootfs);
  if (!(await root.isDirectory(''))) {
    throw new UserError(`--rootfs ${rootfs} is not a directory`, { hint: 'pass the root of an unpacked image, or / inside a build' });
  }
  return {
    kargs: kargsFromKargsD(await loadKargsD(root.root), arch),
    kernel: await findContainerKernel(root),
  };
}

export function renderContainerInspection(doc: ContainerInspection, format: ContainerInspectFormat): string {
  switch (format) {
    case 'json':
      return JSON.stringify(doc, null, 2) + '\n';
    case 'yaml':
      return toYaml(doc);
    case 'humanreadable': {
      const kernel = doc.kernel === null ? '(none)' : `${doc.kernel.version}${doc.kernel.unified ? ' (UKI)' : ''}`;
      return [`Kernel: ${kernel}`, `Kernel arguments: ${doc.kargs.length > 0 ? doc.kargs.join(' ') : '(none)'}`].join('\n') + '\n';
    }
  }
}
