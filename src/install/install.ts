/**
 * The part of every install that happens on a mounted physical root, shared by `to-disk`
 * and `to-filesystem`:
 *
 *   1. import the pulled image into the root's object store
 *   2. check out the deployment and record its origin (target image, kargs)
 *   3. boot files: kernel, combined initrd and BLS entry, kargs in upstream's order
 *      (install-config kargs, kargs.d, deletes, --karg), onto the ESP with systemd-boot;
 *      or a UKI in EFI/Linux/ (--uki, or the image's sealed UKI), signed with systemd-boot
 *      when keys are given; the image's Secure Boot keys to loader/keys/
 *   4. the deployment's /etc/fstab (root, and the ESP at /boot for boot counting)
 *   5. the root SSH key as a tmpfiles.d snippet
 *   6. /.bootc-aleph.json, the install record, last
 */
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { warn } from '../core/log.js';
import { cancellation } from '../core/cancel.js';
import { Progress } from '../core/progress.js';
import { checkEspSize, espBytesNeeded, prepareDeploymentBoot, type AnyDeploymentBoot } from '../boot/deployment-boot.js';
import type { Esp } from '../boot/esp.js';
import { populateEsp } from '../boot/populate-esp.js';
import { grubBiosAvailable } from '../boot/grub-bios.js';
import { checkKargsForGrub } from '../boot/grub-menu.js';
import { bootsUki } from '../uki/sealed.js';
import type { SigningKey } from '../uki/uki.js';
import { createDeployment, importImage, type Deployment } from '../deploy/deploy.js';
import { sysrootPaths } from '../deploy/paths.js';
import { addUsers, type UserToAdd } from '../deploy/users.js';
import { withSignaturePolicy } from '../deploy/origin.js';
import { imageVersion } from '../oci/manifest.js';
import type { PulledImage } from '../oci/pull.js';
import { formatImageName, formatReference } from '../oci/reference.js';
import type { ImageReference, Platform } from '../oci/types.js';
import type { InstallPolicyFlags, InstallSettings } from './config.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { ALEPH_FILE, ROOT_SSH_TMPFILES, renderAleph, renderFstab, renderRootSshTmpfiles, resolveRootHome, type FstabMount } from './os-config.js';

export interface InstallOnRootRequest {
  /** The mounted physical root. */
  rootDir: string;
  /** For `root=UUID=` in the boot entry. */
  rootFsUuid: string;
  /** Replaces `root=UUID=…` (install config / --root-mount-spec); "" leaves root= out. */
  rootMountSpec?: string;
  rootFsType: string;
  esp: Esp;
  espBytes: number;
  /** hybrid: GRUB's menu beside systemd-boot's entries (to-disk puts GRUB's boot code on the disk); default systemd. */
  bootloader?: 'hybrid' | 'systemd';
  /** hybrid only as the default: a UKI (e.g. the image's sealed one) makes it systemd instead of a refusal. */
  bootloaderDefaulted?: boolean;
  /** How fstab names the ESP for /boot (`UUID=XXXX-XXXX`); absent or "": no /boot line. */
  espMountSpec?: string;
  pulled: PulledImage;
  targetImage: { image: string; transport: string };
  stateroot: string;
  installConfigKargs: readonly string[];
  kargDeletes: readonly string[];
  cliKargs: readonly string[];
  uki?: boolean;
  signing?: SigningKey;
  rootSshAuthorizedKeys?: string;
  /** Accounts added to the deployment's /etc before its boot entry is written (the answers' user). */
  users?: readonly UserToAdd[];
  installerVersion: string;
  progress?: Progress;
  now?: Date;
}

/** What an install command's flags and the install config say about image and kernel arguments. */
export interface InstallSourceRequest {
  image: ImageReference;
  /** Default: the source image reference. */
  targetImage?: { image: string; transport: string };
  kargs: readonly string[];
  kargDeletes: readonly string[];
  /** Boot a UKI (also automatic when the image ships a sealed one). */
  uki?: boolean;
  /** Secure Boot: sign the UKI and systemd-boot. */
  signing?: SigningKey;
}

/** What both install commands are asked besides where to install. */
export interface InstallRequest extends InstallSourceRequest {
  /** Upstream's flags for install-config keys (--bootloader, --block-setup, …); they win over the keys. */
  policy?: InstallPolicyFlags;
  rootSshAuthorizedKeysFile?: string;
  stateroot?: string;
  /** Blob cache for pulled images. */
  storeDir: string;
  platform?: Platform;
  installerVersion: string;
  progress?: Progress;
  /** For tests: where the host's /usr/local/lib, /etc and /run install configs are read. */
  hostRoot?: string;
  /** `--signature-policy FILE`: this policy instead of the host's containers-policy.json. */
  signaturePolicy?: string;
  /** Accounts to add to the installed system (the answers file's `[user]`). */
  users?: readonly UserToAdd[];
}

/**
 * The part of installOnRoot's request both install commands compute the same way: the
 * image to follow (default: the source), and kernel arguments in upstream's order (install
 * config kargs, config karg-deletes plus --karg-delete, then --karg; no console arguments
 * of our own, as upstream bootc adds none).
 */
export function imageAndKargs(
  req: InstallSourceRequest,
  settings: Pick<InstallSettings, 'installConfigKargs' | 'kargDeletes' | 'enforceContainerSigpolicy'>,
): Pick<InstallOnRootRequest, 'targetImage' | 'installConfigKargs' | 'kargDeletes' | 'cliKargs' | 'uki' | 'signing'> {
  return {
    ...(req.uki !== undefined ? { uki: req.uki } : {}),
    ...(req.signing ? { signing: req.signing } : {}),
    // Enforced at install: every later update of the image is held to the policy as well.
    targetImage: withSignaturePolicy(req.targetImage ?? { image: formatImageName(req.image), transport: req.image.transport }, settings.enforceContainerSigpolicy),
    installConfigKargs: settings.installConfigKargs,
    kargDeletes: settings.kargDeletes,
    cliKargs: req.kargs,
  };
}

export interface InstalledSystem {
  deployment: Deployment;
  boot: AnyDeploymentBoot;
  /** hybrid: the ESP has GRUB's menu, and the disk needs GRUB's boot code. */
  bootloader: 'hybrid' | 'systemd';
}

/**
 * hybrid as a default gives way to systemd for a UKI (UEFI-only) and where no BIOS GRUB can be
 * built (grub-bios.ts grubBiosAvailable); asked for by name, a UKI with hybrid is refused.
 */
export async function resolveDefaultedBootloader(chosen: 'hybrid' | 'systemd', defaulted: boolean, uki: boolean, deploymentDir: string): Promise<'hybrid' | 'systemd'> {
  if (chosen !== 'hybrid') return chosen;
  if (uki) {
    if (defaulted) return 'systemd';
    throw new UserError('a UKI boots only under UEFI, and a hybrid disk also boots BIOS machines through GRUB', {
      hint: 'choose --bootloader systemd for a UKI, or leave --uki out',
    });
  }
  if (defaulted && !(await grubBiosAvailable(deploymentDir))) {
    warn('no GRUB for BIOS here (Debian grub-pc-bin, on this host or in the image): the disk boots under UEFI only');
    return 'systemd';
  }
  return 'hybrid';
}

export async function installOnRoot(req: InstallOnRootRequest): Promise<InstalledSystem> {
  const progress = req.progress ?? Progress.silent();
  const name = formatReference(req.pulled.reference);
  const imported = await importImage(req.rootDir, req.pulled, progress);
  cancellation.check();

  const uki = bootsUki(req, imported.tree.entries);

  const deployment = await createDeployment(req.rootDir, imported, name, {
    bootType: uki ? 'uki' : 'type1',
    stateroot: req.stateroot,
    targetImage: req.targetImage,
    kargs: [...req.installConfigKargs, ...req.cliKargs],
    architecture: req.pulled.config.architecture,
    ...(req.now ? { now: req.now } : {}),
  });
  if (req.users !== undefined && req.users.length > 0) {
    const users = req.users;
    await withContext(`Adding user ${users.map((u) => u.name).join(', ')}`, () => addUsers(deployment.dir, sysrootPaths(req.rootDir).stateVar(deployment.stateroot), users));
  }
  cancellation.check();
  const bootloader = await resolveDefaultedBootloader(req.bootloader ?? 'systemd', req.bootloaderDefaulted === true, uki, deployment.dir);

  const boot = await withContext('Installing the bootloader and the boot entry', async () => {
    const work = await mkdtemp(join(req.rootDir, '.bootc-install-'));
    try {
      const prepared = await prepareDeploymentBoot(
        {
          deploymentDir: deployment.dir,
          stateroot: deployment.stateroot,
          deploymentId: deployment.id,
          rootFsUuid: req.rootFsUuid,
          bootOrder: 1,
          imageVersion: imageVersion(req.pulled.config) ?? undefined,
          installConfigKargs: req.installConfigKargs,
          kargDeletes: req.kargDeletes,
          cliKargs: req.cliKargs,
          ...(req.rootMountSpec !== undefined ? { rootMountSpec: req.rootMountSpec } : {}),
          ...(uki ? { uki: req.signing ? { signing: req.signing } : {} } : {}),
        },
        work,
      );
      checkEspSize(req.espBytes, await espBytesNeeded(prepared, deployment.dir));
      if (bootloader === 'hybrid') checkKargsForGrub(prepared.kernelArguments);
      await populateEsp(req.esp, {
        deploymentDir: deployment.dir,
        boot: prepared,
        ...(uki && req.signing ? { signing: req.signing } : {}),
        grubMenu: bootloader === 'hybrid',
      });
      return prepared;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  await withContext('Writing /etc/fstab of the deployment', async () => {
    const fstab = join(deployment.dir, 'etc', 'fstab');
    const existing = await readFile(fstab, 'utf8').catch(() => '');
    const rootSpec = req.rootMountSpec === undefined || req.rootMountSpec === '' ? `UUID=${req.rootFsUuid}` : req.rootMountSpec;
    const mounts: FstabMount[] = [{ spec: rootSpec, mountpoint: '/', fsType: req.rootFsType, options: 'defaults' }];
    if (req.espMountSpec) mounts.push({ spec: req.espMountSpec, mountpoint: '/boot', fsType: 'vfat', options: 'umask=0077,shortname=winnt' });
    await writeFileAtomic(fstab, renderFstab(existing, mounts), 0o644);
  });

  if (req.rootSshAuthorizedKeys !== undefined) {
    const keys = req.rootSshAuthorizedKeys;
    await withContext(`Writing /${ROOT_SSH_TMPFILES}`, async () => {
      const link = await readlink(join(deployment.dir, 'root')).catch(() => null);
      await writeFileAtomic(join(deployment.dir, ROOT_SSH_TMPFILES), renderRootSshTmpfiles(keys, resolveRootHome(link)), 0o644);
    });
  }

  await withContext(`Writing /${ALEPH_FILE}`, () =>
    writeFileAtomic(
      join(req.rootDir, ALEPH_FILE),
      renderAleph({
        image:
          req.pulled.reference.transport === 'registry'
            ? `${req.pulled.reference.name}@${req.pulled.manifestDigest}`
            : formatReference(req.pulled.reference),
        digest: req.pulled.manifestDigest,
        'target-image': req.targetImage.transport === 'registry' ? req.targetImage.image : `${req.targetImage.transport}:${req.targetImage.image}`,
        labels: req.pulled.config.labels,
        ...(imageVersion(req.pulled.config) ? { version: imageVersion(req.pulled.config)! } : {}),
        timestamp: (req.now ?? new Date()).toISOString(),
        kernel: release(),
        selinux: 'disabled',
        'installer-version': req.installerVersion,
      }),
      0o644,
    ),
  );
  return { deployment, boot, bootloader };
}
