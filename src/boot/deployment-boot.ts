/**
 * Boot files and the BLS entry of one deployment:
 *
 *   1. find the kernel and initramfs under <deployment>/usr/lib/modules/<kver>/
 *   2. merge the kernel arguments (kargs.ts), with the image's kargs.d
 *   3. write the combined initrd (image initramfs + addon) to a work directory
 *   4. render the entry from the image's os-release
 *   5. on the ESP: kernel and initrd under bootc/<id>/, then the entry, last, so an entry
 *      never points at files that are not there yet
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { BOOTC_SORT_KEY, checkDeploymentId, checkStateroot, entryTitle, newEntryFileName, parseOsRelease, type BlsEntry } from './bls.js';
import { copyToEsp, findSystemdBoot, formatMiB, writeBootEntry, type EspFile, type EspLocation } from './esp.js';
import { hostRustArch, kargsFromKargsD, loadKargsD, mergeKernelArguments, type RustArch } from './kargs.js';
import { writeCombinedInitrd } from './prepare-root.js';

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

export interface DeploymentBootOptions {
  deploymentDir: string;
  stateroot: string;
  deploymentId: string;
  rootFsUuid: string;
  /** The entry's `version`: the highest boots by default (bls.ts). */
  bootOrder: number;
  /** The image's version label, shown in the title. */
  imageVersion?: string;
  rootKargs?: readonly string[];
  installConfigKargs?: readonly string[];
  kargDeletes?: readonly string[];
  /** --karg and config.toml `customizations.kernel.append`. */
  cliKargs?: readonly string[];
  arch?: RustArch;
}

export interface DeploymentBoot {
  kernel: KernelFiles;
  kernelArguments: string[];
  entryFileName: string;
  entry: BlsEntry;
  /** Kernel and combined initrd, ready to copy. */
  files: EspFile[];
}

/** ESP directory of a deployment's kernel and initrd. */
export const deploymentBootDir = (deploymentId: string): string => `bootc/${deploymentId}`;

/** Steps 1-4: everything but the ESP writes. The combined initrd is written to `workDir`. */
export async function prepareDeploymentBoot(options: DeploymentBootOptions, workDir: string): Promise<DeploymentBoot> {
  checkStateroot(options.stateroot);
  checkDeploymentId(options.deploymentId);
  return withContext(`Preparing the boot entry of deployment ${options.stateroot}/${options.deploymentId}`, async () => {
    const kernel = await findKernel(options.deploymentDir);
    const kargsD = kargsFromKargsD(await loadKargsD(options.deploymentDir), options.arch ?? hostRustArch());
    const kernelArguments = mergeKernelArguments({
      rootFsUuid: options.rootFsUuid,
      stateroot: options.stateroot,
      deploymentId: options.deploymentId,
      rootKargs: options.rootKargs,
      installConfigKargs: options.installConfigKargs,
      kargsD,
      deletes: options.kargDeletes,
      cli: options.cliKargs,
    });
    const combinedInitrd = join(workDir, `initrd-${options.deploymentId}.img`);
    await writeCombinedInitrd(kernel.initramfs, combinedInitrd);
    const osRelease = parseOsRelease(await readOsRelease(options.deploymentDir));
    const dir = deploymentBootDir(options.deploymentId);
    return {
      kernel,
      kernelArguments,
      entryFileName: newEntryFileName(options.stateroot, options.deploymentId),
      entry: {
        title: entryTitle(osRelease, options.imageVersion),
        version: String(options.bootOrder),
        sortKey: BOOTC_SORT_KEY,
        linux: `/${dir}/vmlinuz`,
        initrd: `/${dir}/initrd.img`,
        options: kernelArguments.join(' '),
      },
      files: [
        { path: `${dir}/vmlinuz`, hostPath: kernel.vmlinuz },
        { path: `${dir}/initrd.img`, hostPath: combinedInitrd },
      ],
    };
  });
}

async function readOsRelease(treeDir: string): Promise<string> {
  for (const path of ['usr/lib/os-release', 'etc/os-release']) {
    try {
      return await readFile(join(treeDir, path), 'utf8');
    } catch {
      // next
    }
  }
  throw new UserError('the image has no /usr/lib/os-release', { hint: 'a bootable image describes itself in /usr/lib/os-release' });
}

/** Step 5. */
export async function installDeploymentBoot(loc: EspLocation, boot: DeploymentBoot): Promise<void> {
  await withContext(`Installing boot entry ${boot.entryFileName}`, async () => {
    await copyToEsp(loc, boot.files);
    await writeBootEntry(loc, boot.entryFileName, boot.entry);
  });
}

/** FAT allocation and directory overhead on top of the files themselves. */
const ESP_SLACK_BYTES = 8 * 1024 * 1024;

/**
 * Bytes the ESP needs: systemd-boot twice, and room for two deployments' kernel and
 * initrd, since an upgrade writes the new one before the old one goes.
 */
export async function espBytesNeeded(boot: DeploymentBoot, deploymentDir: string): Promise<number> {
  const sizes = await Promise.all(boot.files.map(async (f) => (await stat(f.hostPath)).size));
  const loader = (await stat(await findSystemdBoot(deploymentDir))).size;
  return 2 * loader + 2 * sizes.reduce((a, b) => a + b, 0) + ESP_SLACK_BYTES;
}

export function checkEspSize(espBytes: number, neededBytes: number): void {
  if (espBytes < neededBytes) {
    throw new UserError(`the ESP of ${formatMiB(espBytes)} is too small: this image's boot files need ${formatMiB(neededBytes)} (room for two deployments)`, {
      hint: `give the ESP at least ${formatMiB(neededBytes)}`,
    });
  }
}
