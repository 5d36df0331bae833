/**
 * `bootc install to-filesystem PATH`: install onto a root filesystem the user prepared
 * and mounted (LVM, RAID, LUKS set up by hand), with an existing ESP.
 *
 *   1. refuse early: not root, PATH not a mount point, PATH not empty (only lost+found
 *      and mount points below it are allowed) unless --replace, an unreadable SSH key file
 *   2. the root: its device, filesystem type and UUID (findmnt)
 *   3. the ESP: --esp, else the EFI system partition of the disk that holds PATH; it must
 *      already carry a FAT filesystem
 *   4. pull the image; refuse one without a kernel; read its install configuration
 *      (+ the host's) and refuse the keys it cannot honour (config.ts checkInstallConfig);
 *      discoverable-partitions: the root partition must carry the DPS root type
 *   5. --replace=wipe: remove everything on PATH without crossing into other mounts
 *   6. onto PATH: import, deploy, boot entry on the ESP, fstab, SSH key, aleph (install.ts);
 *      root= from --root-mount-spec, the install config, else the filesystem UUID
 *   7. finalise (unless --skip-finalize): sync, fstrim, remount read-only; PATH stays mounted
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { espInImage } from '../boot/esp.js';
import { UserError, withContext } from '../core/errors.js';
import { run } from '../core/exec.js';
import { cancellation } from '../core/cancel.js';
import { info, warn } from '../core/log.js';
import { Progress } from '../core/progress.js';
import { ESP_TYPE_GUID, ROOT_TYPE_GUIDS, diskArchOf } from '../disk/gpt.js';
import { parseSfdiskJson } from '../disk/partition-table.js';
import { ImageTrust } from '../oci/image-trust.js';
import { pullImage } from '../oci/pull.js';
import { formatReference } from '../oci/reference.js';
import { checkStateroot } from '../deploy/paths.js';
import { resolveInstallSettings, type InstallConfig } from './config.js';
import { loadInstallConfig } from './config-files.js';
import { readImageFacts } from './image-facts.js';
import { imageAndKargs, installOnRoot, type InstalledSystem, type InstallRequest } from './install.js';
import { deviceSizeBytes } from '../disk/loop-device.js';
import { filesystemUuid, finaliseRoot } from './to-disk.js';

export type ReplaceMode = 'wipe' | 'alongside';

export interface ToFilesystemRequest extends InstallRequest {
  rootPath: string;
  /** `root=` for the kernel and fstab; "" leaves root= out (discoverable partitions). */
  rootMountSpec?: string;
  /** fstab spec of /boot (the ESP); "" writes no /boot line. */
  bootMountSpec?: string;
  replace?: ReplaceMode;
  /** The ESP's device node; default: found on the disk holding the root. */
  esp?: string;
  skipFinalize: boolean;
}

export interface ToFilesystemResult extends InstalledSystem {
  rootSource: string;
  rootFsType: string;
  rootFsUuid: string;
  esp: string;
  manifestDigest: string;
  config: InstallConfig | null;
}

/** Entries a fresh filesystem may have that do not make it "in use". */
const ALLOWED_IN_EMPTY_ROOT = new Set(['lost+found']);

interface MountedRoot {
  source: string;
  fsType: string;
  uuid: string;
}

async function findMountedRoot(path: string): Promise<MountedRoot> {
  const r = await run({
    description: `Looking up the filesystem mounted at ${path}`,
    argv: ['findmnt', '-J', '-n', '-o', 'SOURCE,FSTYPE,UUID', '--mountpoint', path],
    okExitCodes: [1],
  });
  if (r.exitCode === 1 || r.stdout.trim() === '') {
    throw new UserError(`${path} is not a mount point`, {
      hint: 'create and mount the root filesystem first (e.g. `mkfs.ext4 /dev/vdb2 && mount /dev/vdb2 /mnt`), then pass its mount point',
    });
  }
  const doc = JSON.parse(r.stdout) as { filesystems: Array<{ source: string; fstype: string; uuid: string | null }> };
  const fs = doc.filesystems[0]!;
  const uuid = fs.uuid ?? (await filesystemUuid(fs.source));
  return { source: fs.source, fsType: fs.fstype, uuid };
}

/** Top-level entries of `root` that are its own (not lost+found, not other mounts). */
async function ownEntries(root: string): Promise<string[]> {
  const dev = (await stat(root)).dev;
  const own: string[] = [];
  for (const name of await readdir(root)) {
    if (ALLOWED_IN_EMPTY_ROOT.has(name)) continue;
    const st = await lstat(join(root, name));
    if (st.isDirectory() && st.dev !== dev) continue;
    own.push(name);
  }
  return own.sort();
}

/** Step 3: the ESP on the disk that holds `rootSource`, from its partition table. */
async function findEsp(rootSource: string): Promise<string> {
  const r = await run({ description: `Finding the disk of ${rootSource}`, argv: ['lsblk', '-n', '-d', '-o', 'PKNAME', rootSource] });
  const disk = r.stdout.trim();
  if (disk === '') {
    throw new UserError(`cannot tell which disk holds ${rootSource}, so the ESP cannot be found`, {
      hint: 'name the EFI system partition with --esp, e.g. --esp /dev/vdb1',
    });
  }
  const table = parseSfdiskJson((await run({ description: `Reading the partition table of /dev/${disk}`, argv: ['sfdisk', '--json', `/dev/${disk}`] })).stdout);
  const esp = table.partitions.find((p) => p.typeGuid === ESP_TYPE_GUID);
  if (!esp) {
    throw new UserError(`/dev/${disk} has no EFI system partition`, {
      hint: `create one (type ${ESP_TYPE_GUID}, FAT32, e.g. 1 GiB) or name it with --esp`,
    });
  }
  return esp.node;
}

async function checkEspFilesystem(esp: string): Promise<string> {
  const r = await run({ description: `Probing the ESP ${esp}`, argv: ['blkid', '-p', '-o', 'export', esp], okExitCodes: [2] });
  const fields = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  if (fields['TYPE'] !== 'vfat') {
    throw new UserError(`the ESP ${esp} holds ${fields['TYPE'] ? `a ${fields['TYPE']} filesystem` : 'no filesystem'}, not FAT`, {
      hint: `format it first: mkfs.fat -F 32 -n EFI-SYSTEM ${esp}`,
    });
  }
  return fields['UUID'] ?? '';
}

/**
 * discoverable-partitions: with no root= the initrd's systemd-gpt-auto-generator mounts the
 * partition of the DPS root type of the architecture, so the prepared root must carry it.
 */
async function checkDiscoverableRoot(rootSource: string, ociArchitecture: string): Promise<void> {
  const wanted = ROOT_TYPE_GUIDS[diskArchOf(ociArchitecture)];
  const r = await run({ description: `Reading the partition type of ${rootSource}`, argv: ['lsblk', '-n', '-d', '-o', 'PARTTYPE', rootSource] });
  const have = r.stdout.trim().toUpperCase();
  if (have !== wanted) {
    throw new UserError(
      `the install configuration sets \`discoverable-partitions = true\`, but ${rootSource} ${have === '' ? 'is not a GPT partition' : `has the partition type ${have}`}, not the root type ${wanted} systemd-gpt-auto-generator looks for`,
      { hint: `set the type (e.g. \`sfdisk --part-type /dev/vdb 2 ${wanted}\`), or pass --root-mount-spec UUID=… to name the root on the command line` },
    );
  }
}

export async function installToFilesystem(req: ToFilesystemRequest): Promise<ToFilesystemResult> {
  const progress = req.progress ?? Progress.silent();
  const name = formatReference(req.image);
  return withContext(`Installing ${name} to the filesystem at ${req.rootPath}`, async () => {
    // 1
    if (process.getuid?.() !== 0) {
      throw new UserError('bootc install to-filesystem needs root: the installed files belong to root and other users', {
        hint: 'run it as root (e.g. with sudo)',
      });
    }
    const root = await findMountedRoot(req.rootPath);
    const own = await ownEntries(req.rootPath);
    if (own.length > 0 && req.replace === undefined) {
      throw new UserError(`${req.rootPath} is not empty: it holds ${own.slice(0, 5).map((n) => `/${n}`).join(', ')}${own.length > 5 ? ', …' : ''}`, {
        hint: 'install onto an empty filesystem, or pass --replace wipe (erase it) or --replace alongside (keep the files)',
      });
    }
    if (req.stateroot !== undefined) checkStateroot(req.stateroot);
    const sshKeys =
      req.rootSshAuthorizedKeysFile === undefined
        ? undefined
        : await readFile(req.rootSshAuthorizedKeysFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
            throw new UserError(`cannot read --root-ssh-authorized-keys ${req.rootSshAuthorizedKeysFile}: ${err.message}`, {
              hint: 'give a file in authorized_keys format',
            });
          });

    // 3
    const esp = req.esp ?? (await withContext('Finding the ESP', () => findEsp(root.source)));
    const espUuid = await checkEspFilesystem(esp);
    const espBytes = await deviceSizeBytes(esp);

    // 4
    const trust = await ImageTrust.forFlags(req.signaturePolicy, req.policy?.enforceContainerSigpolicy);
    const pulled = await withContext(`Pulling ${name}`, () =>
      pullImage(req.image, { cacheDir: req.storeDir, progress, signal: cancellation.signal, trust, layersInPlace: true, ...(req.platform ? { platform: req.platform } : {}) }),
    );
    const imageFacts = await readImageFacts(pulled);
    const config = await loadInstallConfig(imageFacts.installConfigFiles, {
      ...(req.hostRoot !== undefined ? { hostRoot: req.hostRoot } : {}),
      arch: diskArchOf(pulled.config.architecture),
    });
    const settings = resolveInstallSettings(
      config,
      {
        ...req.policy,
        ...(req.stateroot !== undefined ? { stateroot: req.stateroot } : {}),
        ...(req.rootMountSpec !== undefined ? { rootMountSpec: req.rootMountSpec } : {}),
        ...(req.bootMountSpec !== undefined ? { bootMountSpec: req.bootMountSpec } : {}),
        kargDeletes: req.kargDeletes,
      },
      'to-filesystem',
    );
    if (settings.enforceContainerSigpolicy) await trust.checkEnforced(req.image, true);
    const rootMountSpec = settings.rootMountSpec;
    if (rootMountSpec === '' && settings.discoverablePartitions) await checkDiscoverableRoot(root.source, pulled.config.architecture);
    if (!settings.rootFsTypeDefaulted && settings.rootFsType !== root.fsType) {
      // The filesystem is the user's; the key is for the installs that create one.
      warn(`the install configuration asks for a ${settings.rootFsType} root ([install.filesystem.root] type); ${req.rootPath} is ${root.fsType} and is used as it is`);
    }
    const stateroot = checkStateroot(settings.stateroot);
    info(`Installing image: ${name}`);
    info(`Digest: ${pulled.manifestDigest}`);
    cancellation.check();

    // 5
    if (req.replace === 'wipe' && own.length > 0) {
      await run({
        description: `Erasing the old contents of ${req.rootPath}`,
        argv: ['rm', '-rf', '--one-file-system', '--', ...own.map((n) => join(req.rootPath, n))],
      });
    }

    // 6
    const bootMountSpec = settings.bootMountSpec ?? (espUuid ? `UUID=${espUuid}` : '');
    const installed = await installOnRoot({
      rootDir: req.rootPath,
      rootFsUuid: root.uuid,
      ...(rootMountSpec !== undefined ? { rootMountSpec } : {}),
      rootFsType: root.fsType,
      esp: espInImage({ image: esp, offsetBytes: 0 }),
      espBytes,
      espMountSpec: bootMountSpec,
      pulled,
      ...imageAndKargs(req, settings),
      stateroot,
      ...(sshKeys !== undefined ? { rootSshAuthorizedKeys: sshKeys } : {}),
      ...(req.users !== undefined ? { users: req.users } : {}),
      installerVersion: req.installerVersion,
      progress,
    });

    // 7
    if (!req.skipFinalize) await finaliseRoot(req.rootPath);
    info('Installation complete!');
    return { ...installed, rootSource: root.source, rootFsType: root.fsType, rootFsUuid: root.uuid, esp, manifestDigest: pulled.manifestDigest, config };
  });
}
