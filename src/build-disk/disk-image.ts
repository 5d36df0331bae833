/**
 * A bootable disk image from a staged physical root, with no loop device and no mount
 * (what `bootc image build-disk` runs in CI):
 *
 *   1. refuse early: existing outputs (unless forced), xfs, a size too small (with the
 *      size needed), an ESP too small for the boot files
 *   2. boot files of the deployment: kernel, combined initrd, BLS entry, or a UKI (src/boot)
 *   3. a sparse file of the planned size, the GPT written into it by sfdisk
 *   4. the root filesystem from the staged tree, at the root partition's offset; with a
 *      store, the store's kept disk instead, its ext4 root updated in place from the last
 *      build's tree (build-disk/previous-disk.ts), or built whole when that fails
 *   5. the ESP at its offset: mkfs.fat, then mtools: systemd-boot, loader.conf, kernel,
 *      initrd, the entry last; on hybrid disks then GRUB's menu and grubenv (grub/)
 *   6. hybrid disks: GRUB's core.img into the BIOS boot partition and boot.img into the MBR,
 *      after the partition table (`sfdisk --wipe always` clears boot code)
 *   7. convert to the requested formats (qemu-img) under bootc-image-builder's paths
 *
 * The raw image is built under a temporary name next to the outputs (in the store, when it
 * keeps the disk) and renamed, copied or converted only when complete; a failure removes
 * it, so no half-written disk is left.
 */
import { randomUUID } from 'node:crypto';
import { pathExists } from '../core/fs-probe.js';
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '../core/exec.js';
import { UserError, withContext } from '../core/errors.js';
import { checkEspSize, espBytesNeeded, prepareDeploymentBoot, type AnyDeploymentBoot, type UkiBootOptions } from '../boot/deployment-boot.js';
import { espInImage, formatEsp, type EspLocation } from '../boot/esp.js';
import { populateEsp } from '../boot/populate-esp.js';
import { DEFAULT_ESP_BYTES, planDiskLayout, type DiskArch, type DiskLayout } from '../disk/gpt.js';
import { writePartitionTable } from '../disk/partition-table.js';
import { checkRootFsSupported, makeRootFilesystem, measureTree, rootFsDefaultBytes, rootFsMinBytes, type RootFsTarget, type RootFsType } from '../disk/root-filesystem.js';
import { PreviousDisk, type RootFsUpdate } from './previous-disk.js';
import { replaceFile } from '../core/durable-file.js';
import { installGrubBiosBootCode } from '../boot/grub-boot.js';
import { checkKargsForGrub } from '../boot/grub-menu.js';

export type DiskImageType = 'raw' | 'qcow2' | 'vmdk' | 'vhd';

/** bootc-image-builder's output layout: `<output>/<dir>/<file>`, and qemu-img's format name. */
export const DISK_IMAGE_OUTPUTS: Readonly<Record<DiskImageType, { dir: string; file: string; qemuFormat: string }>> = {
  qcow2: { dir: 'qcow2', file: 'disk.qcow2', qemuFormat: 'qcow2' },
  raw: { dir: 'image', file: 'disk.raw', qemuFormat: 'raw' },
  vmdk: { dir: 'vmdk', file: 'disk.vmdk', qemuFormat: 'vmdk' },
  vhd: { dir: 'vpc', file: 'disk.vhd', qemuFormat: 'vpc' },
};

export const diskImageOutputPath = (outputDir: string, type: DiskImageType): string =>
  join(outputDir, DISK_IMAGE_OUTPUTS[type].dir, DISK_IMAGE_OUTPUTS[type].file);

export interface DiskDeployment {
  stateroot: string;
  deploymentId: string;
  /** Default: <sysrootDir>/bootc/deploy/<stateroot>/<deploymentId>. */
  deploymentDir?: string;
  imageVersion?: string;
  installConfigKargs?: readonly string[];
  kargDeletes?: readonly string[];
  /** --karg and config.toml `customizations.kernel.append`. */
  cliKargs?: readonly string[];
  /** Replaces `root=UUID=…` (install config root-mount-spec); "" leaves root= out. */
  rootMountSpec?: string;
  /** Boot a UKI (Type #2); its signing key also signs systemd-boot. */
  uki?: UkiBootOptions;
}

export interface BuildDiskOptions {
  /** The staged physical root: bootc/deploy/…, bootc/state/… (root-owned files need root). */
  sysrootDir: string;
  deployment: DiskDeployment;
  outputDir: string;
  types: readonly DiskImageType[];
  rootfs?: RootFsType;
  /** Whole disk in bytes; default: what the image needs plus room to grow. */
  sizeBytes?: number;
  /** config.toml `customizations.filesystem` minsize of `/`. */
  rootMinBytes?: number;
  espBytes?: number;
  arch?: DiskArch;
  menuTimeoutSeconds?: number;
  /** hybrid: GRUB for BIOS beside systemd-boot (x86_64); default systemd (UEFI only). */
  bootloader?: 'hybrid' | 'systemd';
  /** Replace existing outputs. */
  force?: boolean;
  /**
   * Where the last build's disk is kept (`<store>/build-disk`): an ext4 root is then updated
   * from it in place (build-disk/previous-disk.ts) rather than written whole.
   */
  previousDiskDir?: string;
}

export interface BuiltDisk {
  /** Output path of each requested type. */
  outputs: Partial<Record<DiskImageType, string>>;
  layout: DiskLayout;
  rootFsUuid: string;
  boot: AnyDeploymentBoot;
  /** What changed, when the root filesystem was updated from the previous build's. */
  rootUpdate: RootFsUpdate | null;
}

/** Step 1, outputs: refuse before any work is done. */
export async function checkOutputsFree(outputDir: string, types: readonly DiskImageType[], force: boolean): Promise<void> {
  for (const type of types) {
    const path = diskImageOutputPath(outputDir, type);
    if (!force && (await pathExists(path))) {
      throw new UserError(`the output ${path} already exists`, { hint: 'remove it, choose another --output, or pass --force' });
    }
  }
}

export async function buildDiskImage(options: BuildDiskOptions): Promise<BuiltDisk> {
  const fsType = options.rootfs ?? 'ext4';
  const types = [...new Set(options.types)];
  if (types.length === 0) throw new UserError('no disk image type requested', { hint: 'pass --type qcow2 (or raw, vmdk, vhd)' });
  checkRootFsSupported(fsType);
  const hybrid = options.bootloader === 'hybrid';
  if (hybrid && options.deployment.uki) {
    throw new UserError('a UKI boots only under UEFI, and a hybrid disk also boots BIOS machines through GRUB', {
      hint: 'build a UEFI-only disk with --bootloader systemd for a UKI, or leave --uki out',
    });
  }
  await checkOutputsFree(options.outputDir, types, options.force ?? false);
  const { stateroot, deploymentId } = options.deployment;
  const deploymentDir = options.deployment.deploymentDir ?? join(options.sysrootDir, 'bootc', 'deploy', stateroot, deploymentId);

  const tree = await measureTree(options.sysrootDir);
  const rootMin = Math.max(rootFsMinBytes(tree, fsType), options.rootMinBytes ?? 0);
  const espBytes = options.espBytes ?? DEFAULT_ESP_BYTES;
  const layout = planDiskLayout({
    espBytes,
    rootMinBytes: options.sizeBytes === undefined ? Math.max(rootMin, rootFsDefaultBytes(tree, fsType)) : rootMin,
    totalBytes: options.sizeBytes,
    arch: options.arch,
    biosBoot: hybrid,
  });

  await mkdir(options.outputDir, { recursive: true });
  const work = await mkdtemp(join(options.outputDir, '.bootc-build-'));
  try {
    const rootFsUuid = randomUUID();
    const boot = await prepareDeploymentBoot(
      {
        deploymentDir,
        stateroot,
        deploymentId,
        rootFsUuid,
        bootOrder: 1,
        imageVersion: options.deployment.imageVersion,
        installConfigKargs: options.deployment.installConfigKargs,
        kargDeletes: options.deployment.kargDeletes,
        cliKargs: options.deployment.cliKargs,
        ...(options.deployment.rootMountSpec !== undefined ? { rootMountSpec: options.deployment.rootMountSpec } : {}),
        arch: options.arch,
        ...(options.deployment.uki ? { uki: options.deployment.uki } : {}),
      },
      work,
    );
    checkEspSize(espBytes, await espBytesNeeded(boot, deploymentDir));
    if (hybrid) checkKargsForGrub(boot.kernelArguments);

    const rootTarget = (image: string): RootFsTarget => ({ image, offsetBytes: layout.root.startBytes, sizeBytes: layout.root.sizeBytes, uuid: rootFsUuid });
    const cache = options.previousDiskDir !== undefined && fsType === 'ext4' ? await PreviousDisk.take(options.previousDiskDir) : null;
    const raw = cache ? cache.raw : join(work, 'disk.raw');
    let rootUpdate: RootFsUpdate | null = null;
    try {
      const alias = { dir: `/bootc/deploy/${stateroot}`, name: deploymentId };
      const kept = cache ? await cache.describe(options.sysrootDir, alias) : false;
      if (cache && kept) rootUpdate = await cache.update(options.sysrootDir, layout, rootTarget(raw), work);
      if (!rootUpdate) {
        await withContext('Creating the disk image file', async () => {
          const file = await open(raw, 'w');
          await file.truncate(layout.totalBytes);
          await file.close();
        });
        await writePartitionTable(raw, layout);
        await withContext('Creating the root filesystem', () => makeRootFilesystem(fsType, options.sysrootDir, rootTarget(raw), work));
      }
      const esp: EspLocation = { image: raw, offsetBytes: layout.esp.startBytes };
      await withContext('Writing the ESP', async () => {
        await formatEsp(esp, layout.esp.sizeBytes);
        await populateEsp(espInImage(esp), {
          deploymentDir,
          boot,
          ...(options.deployment.uki?.signing ? { signing: options.deployment.uki.signing } : {}),
          ...(options.menuTimeoutSeconds !== undefined ? { timeoutSeconds: options.menuTimeoutSeconds } : {}),
          grubMenu: hybrid,
        });
      });
      if (layout.biosBoot) {
        await installGrubBiosBootCode({ disk: raw, biosBoot: layout.biosBoot, espPartitionNumber: layout.esp.number, deploymentDir, workDir: work });
      }
      const outputs = await writeOutputs(raw, options.outputDir, types, cache !== null);
      if (cache && kept) await cache.keep(layout);
      return { outputs, layout, rootFsUuid, boot, rootUpdate };
    } finally {
      await cache?.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Step 7: each type under its output path, written durably (core/durable-file.ts). */
async function writeOutputs(raw: string, outputDir: string, types: readonly DiskImageType[], keepRaw: boolean): Promise<Partial<Record<DiskImageType, string>>> {
  const outputs: Partial<Record<DiskImageType, string>> = {};
  // Raw last: it is renamed away from the work directory (copied when the store keeps it), the others read it.
  const ordered = [...types].sort((a, b) => Number(a === 'raw') - Number(b === 'raw'));
  for (const type of ordered) {
    const dest = diskImageOutputPath(outputDir, type);
    await mkdir(dirname(dest), { recursive: true });
    await replaceFile(dest, (tmp) => (type !== 'raw' ? convertDiskImage(raw, tmp, type) : keepRaw ? copySparse(raw, tmp) : rename(raw, tmp)));
    outputs[type] = dest;
  }
  return outputs;
}

async function copySparse(from: string, to: string): Promise<void> {
  await run({ description: `Copying the disk image to ${to}`, argv: ['cp', '--sparse=always', from, to] });
}

export async function convertDiskImage(raw: string, dest: string, type: Exclude<DiskImageType, 'raw'>): Promise<void> {
  const format = DISK_IMAGE_OUTPUTS[type].qemuFormat;
  // vpc: keep the exact size (Azure wants whole MiB) instead of qemu-img's CHS rounding.
  const formatOptions = type === 'vhd' ? ['-o', 'force_size=on'] : [];
  await run({
    description: `Converting the disk image to ${format}`,
    argv: ['qemu-img', 'convert', '-f', 'raw', '-O', format, ...formatOptions, raw, dest],
  });
}

