/**
 * An installer medium (`build-disk --type iso` → `bootiso/install.iso`), with no loop device
 * and no mount: a hybrid ISO 9660 image that boots under UEFI from an optical drive (El
 * Torito) and written raw to a USB stick (its GPT names the same FAT image as an ESP).
 *
 *   /LiveOS/squashfs.img     the live system: the image's tree plus the installer
 *                            (live-system.ts), compressed, read-only (mksquashfs)
 *   /bootc/image/            the image itself as an OCI layout (blobs grafted from the
 *                            store, not copied): the installer's default source
 *   appended partition 2     the boot FAT (mkfs.fat + mtools): systemd-boot from the image,
 *                            one entry, the image's kernel and its initramfs + the live
 *                            addon (boot/live-initrd.ts)
 *
 * The kernel command line names the medium by its volume label; the addon finds the
 * squashfs on it (DESIGN.md, "Installer medium").
 */
import { mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { findOnPath, run } from '../core/exec.js';
import { debianPackageFor } from '../core/host-packages.js';
import { UserError, withContext } from '../core/errors.js';
import { replaceFile } from '../core/durable-file.js';
import { espInImage, formatEsp, installSystemdBoot, writeLoaderConf, ESP_MIN_BYTES, type EspLocation } from '../boot/esp.js';
import { findKernel } from '../boot/kernel.js';
import { buildLiveInitrd, readLiveModules, LIVE_KARG } from '../boot/live-initrd.js';
import { writeCombinedInitrd } from '../boot/prepare-root.js';
import { ENTRIES_DIR, entryTitle, parseOsRelease, renderBlsEntry } from '../boot/bls.js';

/** bootc-image-builder's path for its ISO: `<output>/bootiso/install.iso`. */
export const ISO_OUTPUT = { dir: 'bootiso', file: 'install.iso' } as const;
export const isoOutputPath = (outputDir: string): string => join(outputDir, ISO_OUTPUT.dir, ISO_OUTPUT.file);

/** ISO 9660 volume identifier; the kernel finds the medium by it (`root=LABEL=`). */
export const ISO_VOLUME_LABEL = 'BOOTC_LIVE';
export const SQUASHFS_PATH = '/LiveOS/squashfs.img';
/** Where the image's OCI layout is on the medium. */
export const IMAGE_LAYOUT_PATH = '/bootc/image';
const LIVE_KERNEL = 'live/vmlinuz';
const LIVE_INITRD = 'live/initrd.img';
const LIVE_ENTRY = 'bootc-live.conf';
/** Room on the boot FAT beyond its files (FAT tables, directories). */
const BOOT_FAT_SLACK_BYTES = 8 * 1024 * 1024;

/** A blob of the image on the medium: its path under the layout and where it is read from. */
export interface LayoutBlob {
  digest: string;
  hostPath: string;
}

export interface IsoImageOptions {
  /** The live system's tree (root-owned files: needs root). */
  liveRootDir: string;
  /** Kernel arguments of the live system (not of the installed one). */
  kargs: readonly string[];
  /** The image as an OCI layout: index.json text and the blobs it names. */
  layout: { indexJson: string; blobs: readonly LayoutBlob[] };
  output: string;
  /** Scratch space for the squashfs and the boot FAT. */
  workDir: string;
}

/** The live entry's command line: the medium by label, the squashfs on it, then `kargs`. */
export function liveKernelArguments(kargs: readonly string[]): string[] {
  return [`root=LABEL=${ISO_VOLUME_LABEL}`, 'ro', `${LIVE_KARG}=${SQUASHFS_PATH}`, ...kargs];
}

/** xorriso's command line (pure, for the test): the hybrid layout described at the top. */
export function xorrisoArgs(output: string, bootFat: string, grafts: ReadonlyArray<{ isoPath: string; hostPath: string }>): [string, ...string[]] {
  // In graft-point syntax "=" and "\" in a path are escaped with "\".
  const esc = (p: string): string => p.replace(/[\\=]/g, (c) => `\\${c}`);
  return [
    'xorriso', '-as', 'mkisofs',
    '-o', output,
    '-V', ISO_VOLUME_LABEL,
    '-iso-level', '3',
    '-R',
    // Partition 1 starts 16 blocks in and holds a copy of the ISO's superblock, so the
    // stick's first partition mounts as the medium too; partition 2 is the boot FAT.
    '-partition_offset', '16',
    '-append_partition', '2', '0xef', bootFat,
    '-appended_part_as_gpt',
    '-e', '--interval:appended_partition_2:all::',
    '-no-emul-boot',
    '-graft-points',
    ...grafts.map((g) => `${esc(g.isoPath)}=${esc(g.hostPath)}`),
  ];
}

async function makeSquashfs(tree: string, dest: string): Promise<void> {
  await run({
    description: 'Compressing the live system (mksquashfs)',
    // zstd at a low level: most of the image is compressed layers' content already, and the
    // build should cost little more than a disk image's.
    argv: ['mksquashfs', tree, dest, '-noappend', '-comp', 'zstd', '-Xcompression-level', '3', '-no-progress', '-quiet'],
  });
}

/** The boot FAT: systemd-boot, the live entry, the kernel and the combined initrd. */
async function makeBootFat(liveRootDir: string, kargs: readonly string[], work: string): Promise<string> {
  const kernel = await findKernel(liveRootDir);
  const initrd = join(work, 'initrd.img');
  const modules = await readLiveModules(liveRootDir, kernel.kernelVersion);
  await writeCombinedInitrd(kernel.initramfs, initrd, buildLiveInitrd(modules));
  const needed = (await stat(kernel.vmlinuz)).size + (await stat(initrd)).size + 2 * 1024 * 1024 + BOOT_FAT_SLACK_BYTES;
  const size = Math.ceil(Math.max(needed, ESP_MIN_BYTES) / (1024 * 1024)) * 1024 * 1024;
  const fat = join(work, 'efiboot.img');
  await writeFile(fat, '');
  await truncate(fat, size);
  const loc: EspLocation = { image: fat, offsetBytes: 0 };
  await formatEsp(loc, size);
  const esp = espInImage(loc);
  await installSystemdBoot(esp, liveRootDir);
  await esp.copyIn([
    { path: LIVE_KERNEL, hostPath: kernel.vmlinuz },
    { path: LIVE_INITRD, hostPath: initrd },
  ]);
  const osRelease = parseOsRelease(await readFile(join(liveRootDir, 'usr/lib/os-release'), 'utf8').catch(() => ''));
  await writeLoaderConf(esp, { timeoutSeconds: 1 });
  await esp.writeText(`${ENTRIES_DIR}/${LIVE_ENTRY}`, renderBlsEntry({
    title: `${entryTitle(osRelease)} (installer)`,
    version: '1',
    sortKey: 'bootc-live',
    linux: `/${LIVE_KERNEL}`,
    initrd: `/${LIVE_INITRD}`,
    options: liveKernelArguments(kargs).join(' '),
  }));
  return fat;
}

/** Builds the medium at `options.output`, durably (a failure leaves no file there). */
export async function buildIsoImage(options: IsoImageOptions): Promise<void> {
  await withContext(`Building the installer medium ${options.output}`, async () => {
    const squashfs = join(options.workDir, 'squashfs.img');
    await makeSquashfs(options.liveRootDir, squashfs);
    const bootFat = await makeBootFat(options.liveRootDir, options.kargs, options.workDir);
    const layoutDir = join(options.workDir, 'layout');
    await mkdir(layoutDir, { recursive: true });
    await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }) + '\n');
    await writeFile(join(layoutDir, 'index.json'), options.layout.indexJson);
    const grafts = [
      { isoPath: SQUASHFS_PATH, hostPath: squashfs },
      { isoPath: `${IMAGE_LAYOUT_PATH}/oci-layout`, hostPath: join(layoutDir, 'oci-layout') },
      { isoPath: `${IMAGE_LAYOUT_PATH}/index.json`, hostPath: join(layoutDir, 'index.json') },
      ...options.layout.blobs.map((b) => ({ isoPath: `${IMAGE_LAYOUT_PATH}/blobs/${b.digest.replace(':', '/')}`, hostPath: b.hostPath })),
    ];
    await mkdir(dirname(options.output), { recursive: true });
    await replaceFile(options.output, async (tmp) => {
      await run({ description: 'Writing the ISO image (xorriso)', argv: xorrisoArgs(tmp, bootFat, grafts) });
    });
  });
}

/** `index.json` of the layout on the medium: the one manifest, named `refName`. */
export function mediumIndexJson(manifest: { mediaType: string; digest: string; size: number }, refName: string): string {
  return (
    JSON.stringify(
      {
        schemaVersion: 2,
        manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': refName } }],
      },
      null,
      2,
    ) + '\n'
  );
}

/** The xorriso and mksquashfs programs, checked before anything is pulled. */
export function checkIsoTools(): void {
  const missing = ['xorriso', 'mksquashfs'].filter((program) => findOnPath(program) === null);
  if (missing.length > 0) {
    const packages = missing.map((program) => debianPackageFor(program) ?? program);
    throw new UserError(`building an installer ISO needs ${missing.map((p, i) => `${p} (${packages[i]})`).join(' and ')}`, {
      hint: `install them: apt-get install ${packages.join(' ')}`,
    });
  }
}
