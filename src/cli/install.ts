/**
 * `bootc install …`: to-disk, to-filesystem and print-configuration. Thin: parse the flags,
 * call src/install, print the outcome.
 */
import { resolve } from 'node:path';
import { cancellation } from '../core/cancel.js';
import { UserError } from '../core/errors.js';
import { createProgress } from '../core/progress.js';
import { checkInstallConfig, type BlockSetup, type InstallCommand, type InstallPolicyFlags } from '../install/config.js';
import type { InstallArgs } from '../install/options.js';
import type { InstallRequest } from '../install/install.js';
import { installToDisk, type ToDiskRequest } from '../install/to-disk.js';
import { parseRootSize } from '../install/options.js';
import { installToFilesystem, type ToFilesystemRequest } from '../install/to-filesystem.js';
import { parsePlatform } from '../oci/manifest.js';
import type { ImageReference } from '../oci/types.js';
import { toolVersion } from '../core/version.js';
import { signingKeyFromFlags } from '../uki/uki.js';
import { loadInstallConfig, readImageInstallConfigFiles, readTreeInstallConfigFiles } from '../install/config-files.js';
import { renderPrintConfiguration } from '../install/config.js';
import { withAnswersFile, type AnswerUser, type FinishAction } from '../install/answers.js';
import { run } from '../core/exec.js';
import { pullImage } from '../oci/pull.js';
import { formatImageName, parseReference } from '../oci/reference.js';

/** Where pulled blobs are kept between runs, as `bootc image build-disk` keeps them. */
export const DEFAULT_STORE_DIR = '/var/cache/bootc/store';

export interface PrintConfigurationArgs {
  all: boolean;
  sourceImgref?: string;
  store?: string;
  /** Tests: where the host's /usr/local/lib, /etc and /run configs are read (not a flag). */
  hostRoot?: string;
}

/**
 * Without --source-imgref the running system is the image (upstream runs this inside the
 * container), so its own /usr/lib/bootc/install is read.
 */
export async function runPrintConfiguration(args: PrintConfigurationArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  let imageFiles;
  if (args.sourceImgref === undefined) {
    imageFiles = await readTreeInstallConfigFiles('/');
  } else {
    const pulled = await pullImage(parseReference(args.sourceImgref), {
      cacheDir: resolve(args.store ?? DEFAULT_STORE_DIR),
      signal: cancellation.signal,
    });
    imageFiles = await readImageInstallConfigFiles(pulled);
  }
  const config = await loadInstallConfig(imageFiles, args.hostRoot !== undefined ? { hostRoot: args.hostRoot } : {});
  out.write(renderPrintConfiguration(config, args.all));
}

/** The flags both install commands take (rows of src/install/options.ts for both verbs). */
export type SharedInstallArgs = Pick<InstallArgs<'to-disk'>, keyof InstallArgs<'to-disk'> & keyof InstallArgs<'to-filesystem'>>;

export type ToDiskArgs = InstallArgs<'to-disk'> & {
  /** Absent: the disk the --config answers file selects. */
  device?: string;
};

/** `--target-imgref` with `--target-transport` (default registry), as upstream. */
export function targetImageOf(args: Partial<Pick<SharedInstallArgs, 'targetImgref' | 'targetTransport'>>, source: ImageReference): { image: string; transport: string } {
  if (args.targetImgref === undefined) return { image: formatImageName(source), transport: source.transport };
  const transport = args.targetTransport ?? 'registry';
  const ref = parseReference(transport === 'registry' ? args.targetImgref : `${transport}:${args.targetImgref}`);
  return { image: formatImageName(ref), transport: ref.transport };
}

/** The image to install: both install commands need --source-imgref and say so the same way. */
function sourceImageOf(args: { sourceImgref?: string }): ImageReference {
  if (args.sourceImgref === undefined) {
    throw new UserError('no image to install', {
      hint: 'name it with --source-imgref, e.g. --source-imgref quay.io/example/os:latest (any transport: oci:, oci-archive:, containers-storage:, …)',
    });
  }
  return parseReference(args.sourceImgref);
}

/** Upstream's flags that stand for install-config keys; refused here already when we cannot honour them. */
function policyOf(args: SharedInstallArgs & { blockSetup?: BlockSetup | undefined }, command: InstallCommand): InstallPolicyFlags {
  const policy: InstallPolicyFlags = {
    ...(args.blockSetup !== undefined ? { blockSetup: args.blockSetup } : {}),
    ...(args.bootloader !== undefined ? { bootloader: args.bootloader } : {}),
    ...(args.bootupdSkipBootUuid !== undefined ? { bootupdSkipBootUuid: args.bootupdSkipBootUuid } : {}),
    ...(args.enforceContainerSigpolicy !== undefined ? { enforceContainerSigpolicy: args.enforceContainerSigpolicy } : {}),
  };
  checkInstallConfig(null, command, policy);
  return policy;
}

/** The request both installs make of the shared flags; checked before anything is touched. */
export function installRequestOf(args: SharedInstallArgs & { blockSetup?: BlockSetup | undefined }, command: InstallCommand): InstallRequest {
  const image = sourceImageOf(args);
  const signing = signingKeyFromFlags(args);
  const policy = policyOf(args, command);
  return {
    ...(Object.keys(policy).length > 0 ? { policy } : {}),
    image,
    targetImage: targetImageOf(args, image),
    kargs: args.karg,
    kargDeletes: args.kargDelete,
    uki: args.uki,
    ...(signing ? { signing } : {}),
    ...(args.rootSshAuthorizedKeys !== undefined ? { rootSshAuthorizedKeysFile: args.rootSshAuthorizedKeys } : {}),
    ...(args.stateroot !== undefined ? { stateroot: args.stateroot } : {}),
    storeDir: resolve(args.store),
    ...(args.platform !== undefined ? { platform: parsePlatform(args.platform) } : {}),
    installerVersion: toolVersion(),
    ...(args.signaturePolicy !== undefined ? { signaturePolicy: resolve(args.signaturePolicy) } : {}),
  };
}

export async function runInstallToDisk(given: ToDiskArgs): Promise<void> {
  const args: ToDiskArgs & { answerUser?: AnswerUser; finish?: FinishAction } = given.config !== undefined ? await withAnswersFile(given, given.config) : given;
  if (args.device === undefined) {
    throw new UserError('no disk to install to', { hint: 'name it, e.g. `bootc install to-disk /dev/vdb`, or give an answers file with --config' });
  }
  const device = args.device;
  const request = toDiskRequestOf({ ...args, device });
  const progress = await createProgress({ progressFd: args.progressFd, quiet: args.quiet });
  try {
    const result = await installToDisk({ ...request, ...(args.answerUser !== undefined ? { users: [args.answerUser] } : {}), progress });
    await progress.close();
    process.stdout.write(
      [
        `Installed ${args.sourceImgref} to ${args.device}`,
        `  Digest: ${result.manifestDigest}`,
        `  Deployment: ${result.deployment.stateroot}/${result.deployment.id}`,
        `  Root filesystem: ${result.rootFsType} UUID=${result.rootFsUuid}`,
        `  Kernel arguments: ${result.boot.kernelArguments.join(' ')}`,
      ].join('\n') + '\n',
    );
  } finally {
    await progress.close();
  }
  // The answers' `finish`: an unattended install ends the machine's session as asked.
  if (args.finish !== undefined) {
    process.stdout.write(args.finish === 'poweroff' ? 'Powering off, as the answers file asks.\n' : 'Rebooting, as the answers file asks.\n');
    await run({ description: `Asking systemd to ${args.finish === 'poweroff' ? 'power off' : 'reboot'}`, argv: ['systemctl', args.finish] });
  }
}

/** Every to-disk flag into the library's request (the table test checks none is dropped). */
export function toDiskRequestOf(args: ToDiskArgs & { device: string }): ToDiskRequest {
  return {
    ...installRequestOf(args, 'to-disk'),
    device: resolve(args.device),
    viaLoopback: args.viaLoopback,
    wipe: args.wipe,
    ...(args.filesystem !== undefined ? { filesystem: args.filesystem } : {}),
    ...(args.rootSize !== undefined ? { rootSizeBytes: parseRootSize(args.rootSize) } : {}),
    // Always a generic image in effect: no firmware variables are ever written (see --help).
    genericImage: args.genericImage || args.viaLoopback,
  };
}

export type ToFilesystemArgs = InstallArgs<'to-filesystem'> & { rootPath: string };

export async function runInstallToFilesystem(args: ToFilesystemArgs): Promise<void> {
  const request = toFilesystemRequestOf(args);
  const progress = await createProgress({ progressFd: args.progressFd, quiet: args.quiet });
  try {
    const result = await installToFilesystem({ ...request, progress });
    await progress.close();
    process.stdout.write(
      [
        `Installed ${args.sourceImgref} to ${args.rootPath} (${result.rootSource}, ${result.rootFsType})`,
        `  Digest: ${result.manifestDigest}`,
        `  Deployment: ${result.deployment.stateroot}/${result.deployment.id}`,
        `  ESP: ${result.esp}`,
        `  Kernel arguments: ${result.boot.kernelArguments.join(' ')}`,
      ].join('\n') + '\n',
    );
  } finally {
    await progress.close();
  }
}

/** Every to-filesystem flag into the library's request. */
export function toFilesystemRequestOf(args: ToFilesystemArgs): ToFilesystemRequest {
  return {
    ...installRequestOf(args, 'to-filesystem'),
    rootPath: resolve(args.rootPath),
    ...(args.rootMountSpec !== undefined ? { rootMountSpec: args.rootMountSpec } : {}),
    ...(args.bootMountSpec !== undefined ? { bootMountSpec: args.bootMountSpec } : {}),
    ...(args.replace !== undefined ? { replace: args.replace } : {}),
    ...(args.esp !== undefined ? { esp: args.esp } : {}),
    skipFinalize: args.skipFinalize,
  };
}
