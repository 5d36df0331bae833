/**
 * `bootc image build-disk IMAGE`: flags as bootc-image-builder's (`--type`, `--rootfs`,
 * `--output`, `--config` (`-`: JSON on stdin), `--no-default-kernel-args`), plus `--size`,
 * `--karg` and `--force`.
 */
import type { RootFsUpdate } from '../build-disk/previous-disk.js';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { createProgress } from '../core/progress.js';
import { buildConfigFromDocument, parseBuildConfig, parseSize, type BuildConfig } from '../build-disk/build-config.js';
import { buildDisk, type BuildDiskRequest } from '../build-disk/build-disk.js';
import type { BuildType } from '../build-disk/build-disk.js';
import { loadAnswers } from '../install/answers.js';
import type { RootFsType } from '../disk/root-filesystem.js';
import { checkInstallConfig, type Bootloader } from '../install/config.js';
import { parsePlatform } from '../oci/manifest.js';
import { formatImageName, parseReference } from '../oci/reference.js';
import { signingKeyFromFlags } from '../uki/uki.js';

export interface BuildDiskArgs {
  image: string;
  /** Empty: qcow2, bib's default. */
  type: BuildType[];
  /** --installer-answers FILE (with --type iso). */
  installerAnswers?: string;
  rootfs?: RootFsType;
  size?: string;
  config?: string;
  output: string;
  karg: string[];
  /** false with --no-default-kernel-args. */
  defaultKernelArgs: boolean;
  stateroot?: string;
  targetImgref?: string;
  store: string;
  workDir: string;
  platform?: string;
  force: boolean;
  quiet: boolean;
  progressFd?: number;
  uki: boolean;
  bootloader?: Bootloader;
  signKey?: string;
  signCert?: string;
  signaturePolicy?: string;
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** `--config -` reads the configuration from stdin as JSON, as bib does. */
export async function loadConfig(path: string | undefined, stdin: NodeJS.ReadableStream = process.stdin): Promise<BuildConfig> {
  if (path === undefined) return buildConfigFromDocument({}, 'defaults');
  if (path === '-') {
    const text = await withContext('Reading the build configuration from stdin', () => readStdin(stdin));
    return parseBuildConfig(text, 'stdin', 'json');
  }
  const text = await withContext(`Reading the build configuration ${path}`, () =>
    readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new UserError(`cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, {
        hint: 'pass the path of a bootc-image-builder config.toml (or config.json) with --config',
      });
    }),
  );
  return parseBuildConfig(text, path);
}

/** The request of the flags with the files they name read: config.toml, the answers. */
export async function buildDiskRequestFrom(args: BuildDiskArgs): Promise<BuildDiskRequest> {
  const config = await loadConfig(args.config);
  return buildDiskRequestOf(args, config, args.installerAnswers === undefined ? undefined : await readInstallerAnswers(args.installerAnswers));
}

/** --installer-answers: checked now (a bad file is refused before anything is pulled), kept as written. */
async function readInstallerAnswers(file: string): Promise<NonNullable<BuildDiskRequest['installerAnswers']>> {
  const answers = await loadAnswers(file);
  const text = await readFile(file, 'utf8');
  return { file, text, answers };
}

/** Every flag into the library's request (the table test checks none is dropped). */
export function buildDiskRequestOf(args: BuildDiskArgs, config: BuildConfig, installerAnswers?: BuildDiskRequest['installerAnswers']): BuildDiskRequest {
  const target = args.targetImgref === undefined ? undefined : parseReference(args.targetImgref);
  const signing = signingKeyFromFlags(args);
  // A bootloader we do not build is refused before anything is pulled.
  if (args.bootloader !== undefined) checkInstallConfig(null, 'build-disk', { bootloader: args.bootloader });
  return {
    ...(installerAnswers ? { installerAnswers } : {}),
    uki: args.uki,
    ...(args.bootloader !== undefined ? { bootloader: args.bootloader } : {}),
    ...(signing ? { signing } : {}),
    image: parseReference(args.image),
    targetImage: target ? { image: formatImageName(target), transport: target.transport } : undefined,
    types: args.type.length > 0 ? args.type : ['qcow2'],
    outputDir: resolve(args.output),
    rootfs: args.rootfs,
    sizeBytes: args.size === undefined ? undefined : parseSize(args.size, '--size'),
    config,
    kargs: args.karg,
    defaultKernelArgs: args.defaultKernelArgs,
    ...(args.stateroot !== undefined ? { stateroot: args.stateroot } : {}),
    storeDir: resolve(args.store),
    workDir: resolve(args.workDir),
    platform: args.platform === undefined ? undefined : parsePlatform(args.platform),
    force: args.force,
    ...(args.signaturePolicy !== undefined ? { signaturePolicy: resolve(args.signaturePolicy) } : {}),
  };
}

/** How the root filesystem was made, when it was updated from the store's previous disk. */
function rootUpdateNote(update: RootFsUpdate | null): string {
  if (!update) return '';
  return ` (updated from the previous build: ${update.added} entries added, ${update.removed} removed, ${update.changedDirectories} directories changed)`;
}

export async function runBuildDisk(args: BuildDiskArgs): Promise<void> {
  parseReference(args.image); // a malformed reference is refused before the config is read
  const request = await buildDiskRequestFrom(args);
  const progress = await createProgress({ progressFd: args.progressFd, quiet: args.quiet });
  try {
    const result = await buildDisk({ ...request, progress });
    await progress.close();
    const lines = [
      `Built from ${args.image}`,
      `  Digest: ${result.manifestDigest}`,
      ...(result.disk
        ? [
            `  Deployment: ${result.deployment.stateroot}/${result.deployment.id}`,
            `  Root filesystem: ${result.rootFsType} UUID=${result.disk.rootFsUuid}${rootUpdateNote(result.disk.rootUpdate)}`,
            `  Kernel arguments: ${result.disk.boot.kernelArguments.join(' ')}`,
          ]
        : []),
      ...(result.liveKernelArguments ? [`  Installer medium kernel arguments: ${result.liveKernelArguments.join(' ')}`] : []),
      ...Object.values(result.outputs).map((p) => `  Output: ${p}`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await progress.close();
  }
}
