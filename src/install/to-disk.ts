/**
 * `bootc install to-disk DEVICE`: a whole disk (or, with --via-loopback, a disk image
 * file) becomes a bootable system running the image.
 *
 *   1. refuse early: not root, DEVICE not a block device (or, with --via-loopback, not a
 *      file or a file already attached to a loop device), an unreadable
 *      --root-ssh-authorized-keys, a bad --root-size
 *   2. --via-loopback: attach the file to a loop device (detached again whatever happens)
 *   3. check the disk: whole disk, not the running root, not in LVM/RAID/LUKS use, nothing
 *      mounted, no partitions unless --wipe (block-device.ts); nothing is written before
 *   4. pull the image, once the signature policy accepts it (image-trust.ts); from its layers, refuse an image without a kernel and read its
 *      install configuration (+ the host's): filesystem type, stateroot, kargs,
 *      karg-deletes, root-mount-spec, boot-mount-spec, discoverable-partitions (no root=);
 *      keys it cannot honour (block other than direct, bootloader other than systemd, …)
 *      are refused by name here, before the disk is touched (config.ts checkInstallConfig)
 *   5. --wipe: erase the signatures of the partitions and the disk
 *   6. partition: GPT with EFI-SYSTEM and root (src/disk/gpt.ts), and for a hybrid disk (the
 *      x86_64 default) the BIOS boot partition before the ESP; then the partition nodes
 *   7. mkfs the root (label `root`, random UUID) and mount it under /run/bootc/mounts
 *   8. mkfs.fat the ESP (written with mtools later: never mounted)
 *   9. onto the mounted root: import, deploy, boot entry, fstab, SSH key, aleph (install.ts);
 *      hybrid: GRUB's menu on the ESP, then its boot code into the MBR and the BIOS boot
 *      partition (after the table: sfdisk --wipe always clears boot code)
 *  10. finalise: sync, fstrim, remount read-only, unmount; release the partition nodes and
 *      the loop device
 *
 * A failure after step 4 unmounts and detaches everything and says what state the disk is in.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContextError, UserError, unwrapContext, withContext } from '../core/errors.js';
import { run } from '../core/exec.js';
import { cancellation } from '../core/cancel.js';
import { debug, info } from '../core/log.js';
import { Progress } from '../core/progress.js';
import { CleanupStack } from '../core/cleanup-stack.js';
import { espInImage, formatEsp } from '../boot/esp.js';
import { DEFAULT_ESP_BYTES, GiB, MiB, diskArchOf, formatSize, planDiskLayout, type DiskArch, type DiskLayout } from '../disk/gpt.js';
import { writePartitionTable } from '../disk/partition-table.js';
import { ROOT_FS_LABEL } from '../disk/root-filesystem.js';
import { ImageTrust } from '../oci/image-trust.js';
import { hostPlatform, pullImage } from '../oci/pull.js';
import { formatReference } from '../oci/reference.js';
import { checkStateroot } from '../deploy/paths.js';
import { checkInstallTarget, readTargetFacts, wipeDevice } from '../disk/block-device.js';
import { chooseBootloader, resolveInstallSettings, type InstallConfig, type InstallFsType } from './config.js';
import { installGrubBiosBootCode } from '../boot/grub-boot.js';
import { loadInstallConfig } from './config-files.js';
import { imageFactsScanner, readImageFacts } from './image-facts.js';
import { imageAndKargs, installOnRoot, type InstalledSystem, type InstallRequest } from './install.js';
import { attachLoopDevice, deviceSizeBytes, detachLoopDevice, loopDevicesOf, openPartitionNodes } from '../disk/loop-device.js';

/** Where install mounts the new root, as upstream does (`/run/bootc/mounts/rootfs`). */
export const INSTALL_MOUNTS_DIR = '/run/bootc/mounts';
/**
 * The smallest root partition worth creating: the image is imported after mkfs, so its
 * size is not known yet; a smaller disk fails later with ENOSPC and a clear state message.
 */
export const MIN_ROOT_BYTES = 2 * GiB;

export interface ToDiskRequest extends InstallRequest {
  device: string;
  viaLoopback: boolean;
  wipe: boolean;
  filesystem?: InstallFsType;
  rootSizeBytes?: number;
  genericImage: boolean;
}

export interface ToDiskResult extends InstalledSystem {
  device: string;
  layout: DiskLayout;
  rootFsType: InstallFsType;
  rootFsUuid: string;
  manifestDigest: string;
  config: InstallConfig | null;
}

/**
 * Step 6, planning: the ESP and the root on a disk of `diskBytes`; the root partition gets
 * the DPS root type of `arch` (the image's), which discoverable partitions rely on.
 */
export function planInstallLayout(device: string, diskBytes: number, rootSizeBytes?: number, arch?: DiskArch, biosBoot = false): DiskLayout {
  const rootMin = rootSizeBytes ?? MIN_ROOT_BYTES;
  try {
    return planDiskLayout({
      espBytes: DEFAULT_ESP_BYTES,
      ...(arch !== undefined ? { arch } : {}),
      rootMinBytes: rootMin,
      totalBytes: diskBytes,
      biosBoot,
      ...(rootSizeBytes !== undefined ? { rootBytes: rootSizeBytes } : {}),
    });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const needed = DEFAULT_ESP_BYTES + rootMin + 2 * MiB;
    throw new UserError(`${device} (${formatSize(diskBytes)}) is too small: it needs at least ${formatSize(needed)} (ESP ${formatSize(DEFAULT_ESP_BYTES)}, root ${formatSize(rootMin)})`, {
      hint: rootSizeBytes !== undefined ? 'give a smaller --root-size, or a bigger disk' : 'use a bigger disk',
    });
  }
}

const STEPS = ['Checking the disk', 'Pulling image', 'Partitioning', 'Installing the image', 'Finalising'] as const;

/** Upstream's ProgressSteps event for the install as a whole (one subtask per step). */
function stepEvent(progress: Progress, done: number): void {
  progress.emit({
    type: 'ProgressSteps',
    task: 'install',
    description: 'Installing to disk',
    id: 'install-to-disk',
    stepsCached: 0,
    steps: done,
    stepsTotal: STEPS.length,
    subtasks: STEPS.map((description, i) => ({ subtask: description.toLowerCase().replace(/ /g, '-'), description, id: String(i), completed: i < done })),
  });
}

/** Disk states named in the error of a failed install. */
type DiskState = 'untouched' | 'wiped' | 'partitioned' | 'written';
const STATE_MESSAGES: Record<DiskState, string> = {
  untouched: 'nothing was written to it',
  wiped: 'its old signatures were erased; it holds no bootable system',
  partitioned: 'it was partitioned but holds no bootable system',
  written: 'the system was written but not finalised; it may not boot',
};

async function checkRoot(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new UserError('bootc install to-disk needs root: it partitions a disk, creates filesystems and mounts them', {
      hint: 'run it as root (e.g. with sudo)',
    });
  }
}

/** Step 1, DEVICE: a block device, or a regular file with --via-loopback. */
async function checkDeviceKind(device: string, viaLoopback: boolean): Promise<void> {
  let st;
  try {
    st = await stat(device);
  } catch {
    throw new UserError(`${device} does not exist`, {
      hint: viaLoopback ? 'create the disk image first, e.g. `truncate -s 10G disk.raw`' : 'give the path of a disk, e.g. /dev/vdb (see `lsblk`)',
    });
  }
  if (viaLoopback && !st.isFile()) {
    throw new UserError(`${device} is not a regular file`, { hint: '--via-loopback installs into a disk image file; for a disk, leave --via-loopback out' });
  }
  if (!viaLoopback && !st.isBlockDevice()) {
    throw new UserError(`${device} is not a block device`, {
      hint: st.isFile() ? 'to install into a disk image file, add --via-loopback' : 'give the path of a disk, e.g. /dev/vdb (see `lsblk`)',
    });
  }
}

async function readSshKeys(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  return readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new UserError(`cannot read --root-ssh-authorized-keys ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, {
      hint: 'give a file in authorized_keys format (e.g. ~/.ssh/id_ed25519.pub)',
    });
  });
}

/** Step 7: the root filesystem, with its label and a random UUID, as upstream creates it. */
export function mkfsRootArgv(fsType: InstallFsType, node: string, uuid: string): [string, ...string[]] {
  switch (fsType) {
    case 'ext4':
      return ['mkfs.ext4', '-q', '-F', '-L', ROOT_FS_LABEL, '-U', uuid, node];
    case 'xfs':
      return ['mkfs.xfs', '-q', '-f', '-L', ROOT_FS_LABEL, '-m', `uuid=${uuid}`, node];
    case 'btrfs':
      return ['mkfs.btrfs', '-q', '-f', '-L', ROOT_FS_LABEL, '-U', uuid, node];
  }
}

export async function filesystemUuid(node: string): Promise<string> {
  const r = await run({ description: `Reading the filesystem UUID of ${node}`, argv: ['blkid', '-p', '-o', 'value', '-s', 'UUID', node] });
  return r.stdout.trim();
}

/** Step 10 for one mounted root: flush, discard, read-only, unmount. */
export async function finaliseRoot(mountDir: string): Promise<void> {
  await withContext(`Finalising the filesystem at ${mountDir}`, async () => {
    await run({ description: `Flushing ${mountDir}`, argv: ['sync', '-f', mountDir] });
    await run({ description: `Discarding unused blocks of ${mountDir}`, argv: ['fstrim', '--quiet-unsupported', mountDir] });
    await run({ description: `Remounting ${mountDir} read-only`, argv: ['mount', '-o', 'remount,ro', mountDir] });
  });
}

/** Less free space than this after a failed import means the root filesystem filled up. */
const FULL_BELOW_BYTES = 16 * MiB;

async function freeBytes(dir: string): Promise<number> {
  try {
    const st = await statfs(dir);
    return st.bavail * st.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

async function unmount(dir: string): Promise<void> {
  await run({ description: `Unmounting ${dir}`, argv: ['umount', dir] });
}

export async function installToDisk(req: ToDiskRequest): Promise<ToDiskResult> {
  const progress = req.progress ?? Progress.silent();
  const name = formatReference(req.image);
  return withContext(`Installing ${name} to ${req.device}`, async () => {
    // 1
    await checkRoot();
    await checkDeviceKind(req.device, req.viaLoopback);
    if (req.stateroot !== undefined) checkStateroot(req.stateroot);
    const sshKeys = await readSshKeys(req.rootSshAuthorizedKeysFile);
    if (req.viaLoopback && !req.genericImage) debug('--via-loopback implies --generic-image: no firmware boot entries are written');

    if (req.viaLoopback) {
      // Another loop device over the same file could have its partitions mounted, which
      // the checks of a fresh loop device would not see.
      const existing = await loopDevicesOf(req.device);
      if (existing.length > 0) {
        throw new UserError(`${req.device} is already attached to ${existing.join(', ')}`, {
          hint: `it may be in use; unmount what is mounted from it and detach it (\`losetup -d ${existing[0]}\`) first`,
        });
      }
    }

    // 2. From here on each thing attached, created or mounted is undone when the install
    // ends, newest first, after the error (if any) has been described.
    await using cleanup = new CleanupStack();
    const loopDevice = req.viaLoopback ? await withContext(`Attaching ${req.device}`, () => attachLoopDevice(req.device)) : undefined;
    if (loopDevice) cleanup.defer(`detaching ${loopDevice}`, () => detachLoopDevice(loopDevice));
    const disk = loopDevice ?? req.device;
    let state: DiskState = 'untouched';
    let mountDir: string | undefined;
    let mounted = false;
    try {
      // 3
      stepEvent(progress, 0);
      await withContext(`Checking ${disk}`, async () => checkInstallTarget(await readTargetFacts(disk), req.wipe));
      const arch = diskArchOf((req.platform ?? hostPlatform()).architecture);
      const layout = planInstallLayout(req.device, await deviceSizeBytes(disk), req.rootSizeBytes, arch);

      // 4
      stepEvent(progress, 1);
      const trust = await ImageTrust.forFlags(req.signaturePolicy, req.policy?.enforceContainerSigpolicy);
      // The facts are gathered from the layers as they download; cached and local layers are read after.
      const factsScanner = imageFactsScanner(name);
      const pulled = await withContext(`Pulling ${name}`, () =>
        pullImage(req.image, {
          cacheDir: req.storeDir,
          progress,
          signal: cancellation.signal,
          layerTap: factsScanner.tap,
          // An OCI layout or archive (the installer medium's) is read in place, not copied.
          layersInPlace: true,
          trust,
          ...(req.platform ? { platform: req.platform } : {}),
        }),
      );
      const imageFacts = await readImageFacts(pulled, factsScanner);
      const config = await loadInstallConfig(imageFacts.installConfigFiles, {
        ...(req.hostRoot !== undefined ? { hostRoot: req.hostRoot } : {}),
        // match-architectures: the image's architecture (the same as this machine's unless --platform).
        arch,
      });
      const settings = resolveInstallSettings(
        config,
        {
          ...req.policy,
          ...(req.filesystem !== undefined ? { filesystem: req.filesystem } : {}),
          ...(req.stateroot !== undefined ? { stateroot: req.stateroot } : {}),
          kargDeletes: req.kargDeletes,
        },
        'to-disk',
      );
      // The image's own install config may ask for enforcement too (only known after the pull).
      if (settings.enforceContainerSigpolicy) await trust.checkEnforced(req.image, true);
      const fsType = settings.rootFsType;
      const stateroot = checkStateroot(settings.stateroot);
      info(`Installing image: ${name}`);
      info(`Digest: ${pulled.manifestDigest}`);
      cancellation.check();

      // Hybrid by default on x86_64; the image's sealed UKI, found only after the import, turns a
      // default hybrid into systemd (the BIOS boot partition then stays unused).
      const bootloader = chooseBootloader(settings.bootloader ?? (req.uki ? 'systemd' : undefined), 'to-disk', arch);
      const diskLayout = bootloader === 'hybrid' ? planInstallLayout(req.device, await deviceSizeBytes(disk), req.rootSizeBytes, arch, true) : layout;

      // 5
      stepEvent(progress, 2);
      if (req.wipe) {
        state = 'wiped';
        const facts = await readTargetFacts(disk);
        await withContext(`Wiping ${disk}`, () => wipeDevice(facts.device));
      }

      // 6
      state = 'partitioned';
      await withContext(`Partitioning ${disk}`, () => writePartitionTable(disk, diskLayout, randomUUID()));
      const nodes = await openPartitionNodes(disk, [diskLayout.esp, diskLayout.root]);
      cleanup.defer('releasing the partition loop devices', () => nodes.release());
      const espNode = nodes.nodes.get(diskLayout.esp.number)!;
      const rootNode = nodes.nodes.get(diskLayout.root.number)!;

      // 7
      const rootFsUuid = randomUUID();
      await run({ description: `Creating the ${fsType} root filesystem on ${rootNode}`, argv: mkfsRootArgv(fsType, rootNode, rootFsUuid) });
      await mkdir(INSTALL_MOUNTS_DIR, { recursive: true, mode: 0o755 });
      const root = await mkdtemp(join(INSTALL_MOUNTS_DIR, 'rootfs-'));
      mountDir = root;
      cleanup.defer(`removing ${root}`, () => rmdir(root));
      await run({ description: `Mounting the new root filesystem ${rootNode}`, argv: ['mount', rootNode, root] });
      mounted = true;
      const rootMount = cleanup.defer(`unmounting ${root}`, () => unmount(root));

      // 8
      const esp = { image: espNode, offsetBytes: 0 };
      await withContext('Creating the ESP', () => formatEsp(esp, diskLayout.esp.sizeBytes));
      const espUuid = await filesystemUuid(espNode);

      // 9
      stepEvent(progress, 3);
      state = 'written';
      const installed = await installOnRoot({
        rootDir: root,
        rootFsUuid,
        ...(settings.rootMountSpec !== undefined ? { rootMountSpec: settings.rootMountSpec } : {}),
        rootFsType: fsType,
        esp: espInImage(esp),
        espBytes: diskLayout.esp.sizeBytes,
        bootloader,
        bootloaderDefaulted: settings.bootloader === undefined,
        espMountSpec: settings.bootMountSpec ?? `UUID=${espUuid}`,
        pulled,
        ...imageAndKargs(req, settings),
        stateroot,
        ...(sshKeys !== undefined ? { rootSshAuthorizedKeys: sshKeys } : {}),
        ...(req.users !== undefined ? { users: req.users } : {}),
        installerVersion: req.installerVersion,
        progress,
      });

      if (diskLayout.biosBoot && installed.bootloader === 'hybrid') {
        const biosBoot = diskLayout.biosBoot;
        const work = await mkdtemp(join(tmpdir(), 'bootc-grub-'));
        cleanup.defer(`removing ${work}`, () => rm(work, { recursive: true, force: true }));
        await installGrubBiosBootCode({ disk, biosBoot, espPartitionNumber: diskLayout.esp.number, deploymentDir: installed.deployment.dir, workDir: work });
      }

      // 10
      stepEvent(progress, 4);
      await finaliseRoot(root);
      await rootMount.runNow();
      mounted = false;
      stepEvent(progress, STEPS.length);
      info('Installation complete!');
      return { ...installed, device: req.device, layout, rootFsType: fsType, rootFsUuid, manifestDigest: pulled.manifestDigest, config };
    } catch (err) {
      if (state === 'untouched') throw err;
      // The import's streams often report a full disk as "premature close"; ask the filesystem.
      const full =
        (unwrapContext(err).root as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC' ||
        (mounted && mountDir !== undefined && (await freeBytes(mountDir)) < FULL_BELOW_BYTES);
      const cause = full
        ? new UserError('the new root filesystem is full', { hint: 'use a bigger disk or a bigger --root-size', cause: err })
        : err;
      throw new ContextError(`${req.device}: ${STATE_MESSAGES[state]}; run the install again with --wipe`, cause);
    }
  });
}
