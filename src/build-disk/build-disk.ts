/**
 * `bootc image build-disk`: a bootable disk image from a container image, with no loop
 * device and no mount (bootc-image-builder's job, in CI).
 *
 *   1. refuse early: outputs that exist (unless --force), no root, an unsupported root
 *      filesystem asked for by --rootfs (xfs needs loop devices)
 *   2. with the store's lock (`<store>/bootc/lock`): pull the image into the blob store (any
 *      transport; a layer the object store has imported needs no blob, and a local layout's
 *      or archive's layers are read in place, unless an ISO needs them), and import its
 *      layers into the object store kept in the store (`<store>/bootc`), which skips the
 *      layers an earlier build imported. From the imported tree, the image's install
 *      configuration (/usr/lib/bootc/install, as bootc in bib's container reads it): keys
 *      it cannot honour are refused, and so is an xfs root it asks for, before anything is
 *      staged or written
 *   3. stage a physical root in a work directory: the image's objects and indexes
 *      hardlinked from the store (store/link-image.ts), check out the deployment, seed the
 *      stateroot's /var
 *   4. apply config.toml users (accounts in the deployment's /etc, homes under /var) and
 *      the install config's boot-mount-spec (/boot in its /etc/fstab)
 *   5. write the disk: GPT, root filesystem from the staged root, ESP with systemd-boot and
 *      the boot entry (disk-image.ts), converted to the requested types
 *   6. --type iso, last (it adds to the staged tree): the installer medium, whose live
 *      system is the staged deployment plus the installer (live-system.ts, iso-image.ts)
 *   7. remove the work directory, and from the object store what no image built last
 *      under its name needs, whatever happened
 *
 * A rebuild after a one-layer change imports that layer only; the staged root, and so the
 * disk, has the same content as a cold build's (store/link-image.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { CleanupStack } from '../core/cleanup-stack.js';
import { withUpdateLock } from '../core/lock-file.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { gcStore } from '../store/gc.js';
import { isLayerImported } from '../store/layer-import.js';
import { isDigest, storeLayout, treeIndexPath } from '../store/layout.js';
import { linkImageInto } from '../store/link-image.js';
import { run } from '../core/exec.js';
import { cancellation } from '../core/cancel.js';
import { Progress } from '../core/progress.js';
import { ImageTrust } from '../oci/image-trust.js';
import { pullImage, type PulledImage, type PulledLayer } from '../oci/pull.js';
import { blobPathIn } from '../oci/blob-cache.js';
import { resolveDefaultedBootloader } from '../install/install.js';
import { chooseBootloader, resolveInstallConfig, resolveInstallSettings, type Bootloader, type InstallConfig, type InstallSettings } from '../install/config.js';
import { readImageFactsOfTree } from '../install/image-facts.js';
import { renderFstab } from '../install/os-config.js';
import { formatImageName, formatReference } from '../oci/reference.js';
import type { ImageReference, Platform } from '../oci/types.js';
import { createDeployment, importImage, type Deployment, type ImportedImage } from '../deploy/deploy.js';
import { withSignaturePolicy } from '../deploy/origin.js';
import { imageVersion } from '../oci/manifest.js';
import { addUsers, isPasswordHash, type UserToAdd } from '../deploy/users.js';
import { sysrootPaths } from '../deploy/paths.js';
import type { BuildConfig, BuildUser } from './build-config.js';
import { buildDiskImage, checkOutputsFree, type BuiltDisk, type DiskImageType } from './disk-image.js';
import { checkRootFsSupported, type RootFsType } from '../disk/root-filesystem.js';
import { diskArchOf, type DiskArch } from '../disk/gpt.js';
import { bootsUki } from '../uki/sealed.js';
import { findOnPath, TOOL_HELPERS_DIR } from '../core/exec.js';
import type { InstallAnswers } from '../install/answers.js';
import { buildIsoImage, checkIsoTools, IMAGE_LAYOUT_PATH, isoOutputPath, liveKernelArguments, mediumIndexJson, type LayoutBlob } from './iso-image.js';
import { addLiveInstaller, checkLiveInstallPrograms, mediumImageSource, type LiveInstallerSettings } from './live-system.js';
import type { SigningKey } from '../uki/uki.js';
import { removeTree } from '../core/remove-tree.js';

/** What `--type` asks for: a disk image format, or `iso`, an installer medium. */
export type BuildType = DiskImageType | 'iso';

export interface BuildDiskRequest {
  image: ImageReference;
  /** The image the installed system follows for updates; default: `image`. */
  targetImage?: { image: string; transport: string };
  types: readonly BuildType[];
  /** --installer-answers (with `iso`): the medium installs with no input. */
  installerAnswers?: { file: string; text: string; answers: InstallAnswers };
  outputDir: string;
  /** --rootfs; default: the image's install config, else ext4. */
  rootfs?: RootFsType;
  sizeBytes?: number;
  config: BuildConfig;
  kargs: readonly string[];
  /** bib's default kernel arguments (BIB_DEFAULT_KERNEL_ARGS); false: --no-default-kernel-args. */
  defaultKernelArgs: boolean;
  /** Default: the image's install config, else "default". */
  stateroot?: string;
  /** Blob store for pulled images (kept between builds, like bib's --store). */
  storeDir: string;
  /** Where the physical root is staged; needs room for the whole image. */
  workDir: string;
  platform?: Platform;
  force: boolean;
  progress?: Progress;
  /** Boot a UKI (also automatic when the image ships a sealed one). */
  uki?: boolean;
  /** --bootloader (else the image's install config key; default: hybrid on x86_64 unless a UKI boots). */
  bootloader?: Bootloader;
  /** Secure Boot: sign the UKI and systemd-boot. */
  signing?: SigningKey;
  /** `--signature-policy FILE`: this policy instead of the host's containers-policy.json. */
  signaturePolicy?: string;
}

export interface BuildDiskResult {
  /** Output path of each requested type. */
  outputs: Partial<Record<BuildType, string>>;
  /** The disk image built; null when only an ISO was asked for. */
  disk: BuiltDisk | null;
  manifestDigest: string;
  deployment: Deployment;
  rootFsType: RootFsType;
  installConfig: InstallConfig | null;
  /** The live system's kernel arguments, when an ISO was built. */
  liveKernelArguments?: string[];
}

/**
 * What bootc-image-builder adds to the command line of its disk images (it also adds `rw`,
 * which every entry here carries already): a console on the screen and on the first serial
 * port, so a VM's serial console shows the boot and a login prompt. `install` adds none.
 */
export const BIB_DEFAULT_KERNEL_ARGS: readonly string[] = ['console=tty0', 'console=ttyS0'];

/**
 * The kernel arguments a disk is built with, in bib's order: what bib passes to
 * `bootc install to-filesystem` as --karg (its defaults, then config.toml's kernel append),
 * then our own --karg. The image's install-config kargs and kargs.d come before all of them
 * (kargs.ts), so these win.
 */
export function buildDiskKargs(req: Pick<BuildDiskRequest, 'defaultKernelArgs' | 'kargs' | 'config'>): string[] {
  return [...(req.defaultKernelArgs ? BIB_DEFAULT_KERNEL_ARGS : []), ...req.config.kernelAppend, ...req.kargs];
}

/** An xfs root cannot be made here: refused naming where the request came from. */
function checkRootFs(fsType: RootFsType, fromInstallConfig: boolean): void {
  if (!fromInstallConfig) {
    checkRootFsSupported(fsType);
    return;
  }
  try {
    checkRootFsSupported(fsType);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    throw new UserError(`the image's install configuration asks for an ${fsType} root ([install.filesystem.root] type), and ${err.message}`, {
      hint: 'choose another with --rootfs ext4 or --rootfs btrfs, or install to a loop device as root with `bootc install to-disk --via-loopback`',
    });
  }
}

/** Step 4: the install config's boot-mount-spec as the /boot line of the deployment's fstab. */
async function writeBootMount(deployment: Deployment, spec: string | undefined): Promise<void> {
  if (spec === undefined || spec === '') return;
  await withContext('Writing /etc/fstab of the deployment', async () => {
    const fstab = join(deployment.dir, 'etc', 'fstab');
    const existing = await readFile(fstab, 'utf8').catch(() => '');
    await writeFile(fstab, renderFstab(existing, [{ spec, mountpoint: '/boot', fsType: 'vfat', options: 'umask=0077,shortname=winnt' }]), { mode: 0o644 });
  });
}

const STEPS = ['Pulling image', 'Importing image', 'Deploying', 'Writing disk image'] as const;

function stepEvent(progress: Progress, done: number): void {
  progress.emit({
    type: 'ProgressSteps',
    task: 'build-disk',
    description: 'Building disk image',
    id: 'build-disk',
    stepsCached: 0,
    steps: done,
    stepsTotal: STEPS.length,
    subtasks: STEPS.map((description, i) => ({ subtask: description.toLowerCase().replace(/ /g, '-'), description, id: String(i), completed: i < done })),
  });
}

/** The target reference recorded in the origin: what `bootc upgrade` will follow. */
export function defaultTargetImage(ref: ImageReference): { image: string; transport: string } {
  return { image: formatImageName(ref), transport: ref.transport };
}

async function hashPassword(password: string): Promise<string> {
  const { stdout } = await run({ description: 'Hashing a user password', argv: ['openssl', 'passwd', '-6', '-stdin'], stdin: password });
  return stdout.trim();
}

/** Step 4's users: bib's entries with plain passwords hashed, as shadow stores them. */
async function usersToAdd(users: readonly BuildUser[]): Promise<UserToAdd[]> {
  return Promise.all(
    users.map(async (user) => ({
      name: user.name,
      passwordHash: user.password === undefined ? undefined : isPasswordHash(user.password) ? user.password : await hashPassword(user.password),
      groups: user.groups,
      uid: user.uid,
      gid: user.gid,
      home: user.home,
      shell: user.shell,
      sshKey: user.key,
    })),
  );
}

/**
 * Step 2, after the import: the image's install configuration (only the image's: bib runs
 * bootc inside the image), read from its tree, and what it decides with the flags. Keys
 * that cannot be honoured, and an xfs root it asks for, are refused here, before anything
 * is staged.
 */
async function imageSettings(
  req: BuildDiskRequest,
  imported: ImportedImage,
  imageName: string,
  arch: DiskArch,
): Promise<{ installConfig: InstallConfig | null; settings: InstallSettings }> {
  const facts = await readImageFactsOfTree(req.storeDir, imported.tree, imageName);
  const installConfig = resolveInstallConfig(facts.installConfigFiles, arch);
  const settings = resolveInstallSettings(
    installConfig,
    {
      ...(req.rootfs !== undefined ? { filesystem: req.rootfs } : {}),
      ...(req.stateroot !== undefined ? { stateroot: req.stateroot } : {}),
      ...(req.bootloader !== undefined ? { bootloader: req.bootloader } : {}),
    },
    'build-disk',
  );
  checkRootFs(settings.rootFsType, req.rootfs === undefined);
  return { installConfig, settings };
}

/**
 * The store's object store keeps, for each image name built with it, the image built last
 * (`bootc/built-images.json`: name -> manifest digest), and everything else is removed
 * after each build: rebuilding an image after a change imports only its changed layers,
 * and the store does not grow with every build.
 */
const storeLockPath = (storeDir: string): string => join(storeDir, 'bootc', 'lock');
const builtImagesPath = (storeDir: string): string => join(storeDir, 'bootc', 'built-images.json');

async function readBuiltImages(storeDir: string): Promise<Record<string, string>> {
  const text = await readFile(builtImagesPath(storeDir), 'utf8').catch(() => '{}');
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null ? Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string' && isDigest(e[1]))) : {};
  } catch {
    return {};
  }
}

async function recordBuiltImage(storeDir: string, name: string, manifestDigest: string): Promise<void> {
  const built = { ...(await readBuiltImages(storeDir)), [name]: manifestDigest };
  await writeFileAtomic(builtImagesPath(storeDir), JSON.stringify(built, null, 2) + '\n', 0o644);
}

/** After each build, whatever happened: only the recorded images stay in the object store. */
async function pruneStore(storeDir: string): Promise<void> {
  const layout = storeLayout(storeDir);
  const keep = Object.values(await readBuiltImages(storeDir)).filter((digest) => existsSync(treeIndexPath(layout, digest)));
  await gcStore(storeDir, keep);
}

/** Programs of the tool layer a live system lacks when its image has no `attr`: the host's. */
function hostHelpers(): Record<string, string> {
  const helpers: Record<string, string> = {};
  for (const name of ['getfattr', 'setfattr']) {
    const found = findOnPath(name, `${process.env['PATH'] ?? ''}:${TOOL_HELPERS_DIR}`);
    if (found !== null) helpers[name] = found;
  }
  return helpers;
}

/**
 * What config.toml asks that an ISO cannot carry: its users and kernel arguments are for a
 * disk image's system, and a system installed from the medium gets the installer's (the
 * answers file's) instead; the live system's kernel arguments are --karg.
 */
function checkConfigForIso(req: BuildDiskRequest): void {
  const iso = req.types.includes('iso');
  if (!iso && req.installerAnswers) {
    throw new UserError('--installer-answers is for an installer medium', { hint: 'add --type iso' });
  }
  if (!iso) return;
  const hint = 'build the ISO in a run of its own; users and kernel arguments of installed systems go in the installer answers (--installer-answers), the live system\'s kernel arguments in --karg';
  if (req.config.users.length > 0) throw new UserError('the build configuration\'s [[customizations.user]] cannot be carried to systems installed from an ISO', { hint });
  if (req.config.kernelAppend.length > 0) throw new UserError('the build configuration\'s [customizations.kernel] append cannot be carried to systems installed from an ISO', { hint });
}

/** Step 6: the medium's live system and the image's layout on it, from the staged deployment. */
async function buildIso(req: BuildDiskRequest, pulled: PulledImage, deployment: Deployment, work: string): Promise<{ output: string; kargs: string[] }> {
  const target = req.targetImage ?? defaultTargetImage(req.image);
  const settings: LiveInstallerSettings = {
    source: mediumImageSource(IMAGE_LAYOUT_PATH),
    target: target.transport === 'registry' ? target.image : `${target.transport}:${target.image}`,
    ...(req.installerAnswers
      ? {
          answers: {
            text: req.installerAnswers.text,
            namesImage: req.installerAnswers.answers.source !== undefined,
            finish: req.installerAnswers.answers.finish,
          },
        }
      : {}),
  };
  await addLiveInstaller(deployment.dir, settings, hostHelpers());
  const blobPath = (digest: string): string => blobPathIn(pulled.cacheDir, digest);
  const manifestSize = (await stat(blobPath(pulled.manifestDigest))).size;
  const blobs: LayoutBlob[] = [pulled.manifestDigest, pulled.configDigest, ...pulled.layers.map((l) => l.descriptor.digest)].map((digest) => ({
    digest,
    hostPath: blobPath(digest),
  }));
  const kargs = buildDiskKargs(req);
  const output = isoOutputPath(req.outputDir);
  const isoWork = await mkdtemp(join(work, 'iso-'));
  await buildIsoImage({
    liveRootDir: deployment.dir,
    kargs,
    layout: {
      indexJson: mediumIndexJson(
        { mediaType: pulled.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', digest: pulled.manifestDigest, size: manifestSize },
        req.image.tag ?? 'latest',
      ),
      blobs,
    },
    output,
    workDir: isoWork,
  });
  return { output, kargs: liveKernelArguments(kargs) };
}

export async function buildDisk(req: BuildDiskRequest): Promise<BuildDiskResult> {
  const progress = req.progress ?? Progress.silent();
  const name = formatReference(req.image);
  const diskTypes = req.types.filter((t): t is DiskImageType => t !== 'iso');
  const iso = req.types.includes('iso');
  return withContext(`Building a disk image from ${name}`, async () => {
    if (process.getuid?.() !== 0) {
      throw new UserError('building a disk image needs root: the staged files belong to root and other users of the image', {
        hint: 'run it as root (e.g. with sudo), or in a privileged container',
      });
    }
    if (req.rootfs !== undefined) checkRootFs(req.rootfs, false);
    checkConfigForIso(req);
    await checkOutputsFree(req.outputDir, diskTypes, req.force);
    if (iso) {
      checkIsoTools();
      if (!req.force && existsSync(isoOutputPath(req.outputDir))) {
        throw new UserError(`the output ${isoOutputPath(req.outputDir)} already exists`, { hint: 'remove it, choose another --output, or pass --force' });
      }
    }

    stepEvent(progress, 0);
    await mkdir(req.storeDir, { recursive: true });
    return withUpdateLock(storeLockPath(req.storeDir), 'bootc image build-disk', () => buildWithStore(req, progress, diskTypes), 'the store lock');
  });
}

/** Steps 2-7, holding the store's lock. */
async function buildWithStore(req: BuildDiskRequest, progress: Progress, diskTypes: DiskImageType[]): Promise<BuildDiskResult> {
  const name = formatReference(req.image);
  const iso = req.types.includes('iso');
  const trust = await ImageTrust.forFlags(req.signaturePolicy, false);
  const pulled = await pullImage(req.image, {
    cacheDir: req.storeDir,
    progress,
    signal: cancellation.signal,
    platform: req.platform,
    trust,
    // A layer the object store has needs no blob, and a local one is read in place, unless
    // the medium carries the image's layout (from the blob store).
    ...(iso ? {} : { alreadyHave: (layer: PulledLayer) => isLayerImported(req.storeDir, layer.diffId), layersInPlace: true }),
  });
  const arch = diskArchOf(pulled.config.architecture);
  await using cleanup = new CleanupStack();
  cleanup.defer('removing unused content from the store', () => pruneStore(req.storeDir));
  stepEvent(progress, 1);
  const imported = await importImage(req.storeDir, pulled, progress);
  const { installConfig, settings } = await imageSettings(req, imported, name, arch);
  await recordBuiltImage(req.storeDir, name, pulled.manifestDigest);
  if (settings.enforceContainerSigpolicy) await trust.checkEnforced(req.image, true);
  const { stateroot, installConfigKargs, rootMountSpec, rootFsType: fsType } = settings;
  const cliKargs = buildDiskKargs(req);
  cancellation.check();

  await mkdir(req.workDir, { recursive: true });
  const staging = await mkdtemp(join(req.workDir, 'bootc-build-disk-'));
  cleanup.defer(`removing ${staging}`, () => removeTree(staging));
  await linkImageInto(req.storeDir, staging, imported.tree);
  cancellation.check();

  stepEvent(progress, 2);
  const uki = bootsUki(req, imported.tree.entries);
  const deployment = await createDeployment(staging, imported, name, {
    stateroot,
    targetImage: withSignaturePolicy(req.targetImage ?? defaultTargetImage(req.image), settings.enforceContainerSigpolicy),
    kargs: [...installConfigKargs, ...cliKargs],
    architecture: pulled.config.architecture,
    bootType: uki ? 'uki' : 'type1',
  });
  // hybrid by default on x86_64, unless a UKI boots or no BIOS GRUB can be built here.
  const bootloader = await resolveDefaultedBootloader(chooseBootloader(settings.bootloader, 'build-disk', arch), settings.bootloader === undefined, uki, deployment.dir);
  // An ISO's live system runs the installer: an image that lacks its programs is
  // refused before any output is written.
  if (iso) checkLiveInstallPrograms(deployment.dir);
  const stateVar = sysrootPaths(staging).stateVar(stateroot);
  await withContext('Adding the configured users', async () => addUsers(deployment.dir, stateVar, await usersToAdd(req.config.users)));
  await writeBootMount(deployment, settings.bootMountSpec);
  cancellation.check();

  stepEvent(progress, 3);
  const disk =
    diskTypes.length === 0
      ? null
      : await buildDiskImage({
          sysrootDir: staging,
          deployment: {
            stateroot: deployment.stateroot,
            deploymentId: deployment.id,
            deploymentDir: deployment.dir,
            imageVersion: imageVersion(pulled.config) ?? undefined,
            installConfigKargs,
            kargDeletes: settings.kargDeletes,
            cliKargs,
            ...(rootMountSpec !== undefined ? { rootMountSpec } : {}),
            ...(uki ? { uki: req.signing ? { signing: req.signing } : {} } : {}),
          },
          outputDir: req.outputDir,
          types: diskTypes,
          rootfs: fsType,
          arch,
          bootloader,
          sizeBytes: req.sizeBytes,
          rootMinBytes: req.config.rootMinSize,
          force: req.force,
          previousDiskDir: join(req.storeDir, 'build-disk'),
        });
  const outputs: Partial<Record<BuildType, string>> = { ...disk?.outputs };
  let liveKernelArguments: string[] | undefined;
  if (iso) {
    const built = await buildIso(req, pulled, deployment, staging);
    outputs.iso = built.output;
    liveKernelArguments = built.kargs;
  }
  stepEvent(progress, STEPS.length);
  return {
    outputs,
    disk,
    manifestDigest: pulled.manifestDigest,
    deployment,
    rootFsType: fsType,
    installConfig,
    ...(liveKernelArguments ? { liveKernelArguments } : {}),
  };
}
