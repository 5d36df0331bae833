/**
 * Boot files and the BLS entry of one deployment:
 *
 *   1. find the kernel and initramfs under <deployment>/usr/lib/modules/<kver>/
 *   2. merge the kernel arguments (kargs.ts), with the image's kargs.d
 *   3. write the combined initrd (image initramfs + addon) to a work directory
 *   4. render the entry from the image's os-release
 *   5. on the ESP: kernel and initrd under bootc/<id>/, then the entry, last, so an entry
 *      never points at files that are not there yet
 *
 * With `uki` (Type #2, uki-entry.ts) steps 3-5 differ: one UKI per deployment assembled from
 * the same parts (src/uki), or the image's own sealed UKI as it is, copied under a temporary
 * name into EFI/Linux/ and renamed; no Type #1 entry, no bootc/<id>/ directory.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, posix, relative, resolve } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { checkDeploymentId, checkStateroot, entryTitle, newEntryFileName, parseOsRelease, type BlsEntry } from './bls.js';
import { findSystemdBoot, formatMiB, writeBootEntry, type Esp, type EspFile } from './esp.js';
import { newUkiFileName, UKI_DIR, ukiOsRelease } from './uki-entry.js';
import type { SigningKey } from '../uki/uki.js';
import { BOOTC_SORT_KEY } from '../uki/boot-order.js';
import { checkSealedUki, findSealedUki } from '../uki/sealed.js';
import { recordSelector, selectorOfDirectory } from '../uki/selector.js';
import { hostRustArch, kargsFromKargsD, loadKargsD, mergeKernelArguments, type RustArch } from './kargs.js';
import { writeCombinedInitrd } from './prepare-root.js';
import { findKernel, type KernelFiles } from './kernel.js';
import { buildTreeUki } from './tree-uki.js';

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
  /** Replaces `root=UUID=…` (install config / --root-mount-spec); "" leaves root= out. */
  rootMountSpec?: string;
  arch?: RustArch;
  /** Boot a UKI (Type #2) instead of a Type #1 entry. */
  uki?: UkiBootOptions;
}

export interface UkiBootOptions {
  /** Sign the assembled UKI with sbsign. A sealed UKI is installed as it is. */
  signing?: SigningKey;
  /** Default: the image's systemd-stub, else the host's. */
  stub?: string;
}

/** A Type #1 entry with its kernel and initrd. */
export interface DeploymentBoot {
  kind: 'type1';
  kernel: KernelFiles;
  kernelArguments: string[];
  entryFileName: string;
  entry: BlsEntry;
  /** Kernel and combined initrd, ready to copy. */
  files: EspFile[];
}

/** A UKI in EFI/Linux/ (Type #2). */
export interface UkiBoot {
  kind: 'uki';
  kernel: KernelFiles;
  /** What the UKI's .cmdline says (for a sealed UKI: its own). */
  kernelArguments: string[];
  /** `bootc-<stateroot>-<id>+3.efi` */
  ukiFileName: string;
  /** True when it is the image's own UKI, installed as it is. */
  sealed: boolean;
  /** The deployment selector a sealed UKI's command line names. */
  selector?: string;
  /** The UKI, ready to copy to EFI/Linux/<ukiFileName>. */
  files: [EspFile];
}

export type AnyDeploymentBoot = DeploymentBoot | UkiBoot;

/** ESP directory of a deployment's kernel and initrd. */
export const deploymentBootDir = (deploymentId: string): string => `bootc/${deploymentId}`;

/**
 * Steps 1-4: everything but the ESP writes. The combined initrd (or the UKI) is written to
 * `workDir`. Without `uki` the result is always a Type #1 entry.
 */
export async function prepareDeploymentBoot(options: DeploymentBootOptions & { uki?: undefined }, workDir: string): Promise<DeploymentBoot>;
export async function prepareDeploymentBoot(options: DeploymentBootOptions, workDir: string): Promise<AnyDeploymentBoot>;
export async function prepareDeploymentBoot(options: DeploymentBootOptions, workDir: string): Promise<AnyDeploymentBoot> {
  checkStateroot(options.stateroot);
  checkDeploymentId(options.deploymentId);
  return withContext(`Preparing the boot entry of deployment ${options.stateroot}/${options.deploymentId}`, async () => {
    const kernel = await findKernel(options.deploymentDir);
    const kargsD = kargsFromKargsD(await loadKargsD(options.deploymentDir), options.arch ?? hostRustArch());
    const kernelArguments = withRootMountSpec(
      mergeKernelArguments({
        rootFsUuid: options.rootFsUuid,
        stateroot: options.stateroot,
        deploymentId: options.deploymentId,
        rootKargs: options.rootKargs,
        installConfigKargs: options.installConfigKargs,
        kargsD,
        deletes: options.kargDeletes,
        cli: options.cliKargs,
      }),
      options.rootMountSpec,
    );
    if (options.uki) return prepareUkiBoot(options, options.uki, kernel, kernelArguments, workDir);
    const combinedInitrd = join(workDir, `initrd-${options.deploymentId}.img`);
    await writeCombinedInitrd(kernel.initramfs, combinedInitrd);
    const osRelease = parseOsRelease(await readOsRelease(options.deploymentDir));
    const dir = deploymentBootDir(options.deploymentId);
    return {
      kind: 'type1',
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

function withRootMountSpec(kargs: string[], rootMountSpec: string | undefined): string[] {
  if (rootMountSpec === undefined) return kargs;
  return kargs.flatMap((k) => (k.startsWith('root=') ? (rootMountSpec === '' ? [] : [`root=${rootMountSpec}`]) : [k]));
}

/**
 * Type #2: the image's sealed UKI when it ships one (checked to name this deployment's
 * selector, which is recorded on the physical root for prepare-root), else a UKI
 * assembled here with our command line and an `.osrel` that orders it (uki-entry.ts).
 */
async function prepareUkiBoot(
  options: DeploymentBootOptions,
  uki: UkiBootOptions,
  kernel: KernelFiles,
  kernelArguments: string[],
  workDir: string,
): Promise<UkiBoot> {
  const ukiFileName = newUkiFileName(options.stateroot, options.deploymentId);
  const espPath = posix.join(UKI_DIR, ukiFileName);
  const sealed = await findSealedUki(options.deploymentDir);
  if (sealed) {
    const inImage = relative(options.deploymentDir, sealed);
    const selector = await selectorOfDirectory(options.deploymentDir);
    const cmdline = await checkSealedUki(sealed, inImage, selector);
    // The deployment lives at <root>/bootc/deploy/<stateroot>/<id>.
    await recordSelector(resolve(options.deploymentDir, '../../../..'), selector, options.stateroot, options.deploymentId);
    return {
      kind: 'uki',
      kernel,
      kernelArguments: cmdline.split(/\s+/).filter(Boolean),
      ukiFileName,
      sealed: true,
      selector,
      files: [{ path: espPath, hostPath: sealed }],
    };
  }
  const osRelease = parseOsRelease(await readOsRelease(options.deploymentDir));
  const output = join(workDir, ukiFileName);
  await buildTreeUki({
    rootfs: options.deploymentDir,
    cmdline: kernelArguments.join(' '),
    output,
    osRelease: new Uint8Array(
      Buffer.from(ukiOsRelease(await readOsRelease(options.deploymentDir), { title: entryTitle(osRelease, options.imageVersion), bootOrder: options.bootOrder })),
    ),
    ...(uki.stub !== undefined ? { stub: uki.stub } : {}),
    ...(uki.signing ? { signing: uki.signing } : {}),
  });
  return { kind: 'uki', kernel, kernelArguments, ukiFileName, sealed: false, files: [{ path: espPath, hostPath: output }] };
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

/**
 * Step 5. A UKI appears under its real name only once complete (systemd-boot lists `*.efi`);
 * a Type #1 entry is written after its files.
 */
export async function installDeploymentBoot(esp: Esp, boot: AnyDeploymentBoot): Promise<void> {
  if (boot.kind === 'uki') {
    await withContext(`Installing the UKI ${boot.ukiFileName}`, () => esp.copyInAtomically(boot.files[0]));
    return;
  }
  await withContext(`Installing boot entry ${boot.entryFileName}`, async () => {
    await esp.copyIn(boot.files);
    await writeBootEntry(esp, boot.entryFileName, boot.entry);
  });
}

/** FAT allocation and directory overhead on top of the files themselves. */
const ESP_SLACK_BYTES = 8 * 1024 * 1024;

/**
 * Bytes the ESP needs: systemd-boot twice, and room for two deployments' kernel and
 * initrd, since an upgrade writes the new one before the old one goes.
 */
export async function espBytesNeeded(boot: AnyDeploymentBoot, deploymentDir: string): Promise<number> {
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
