/**
 * The installer's services on a real machine: images found on attached media, the image's
 * install configuration (pulled into the store), the disks lsblk lists, and the install
 * itself (`installToDisk`, always with wipe: the person confirmed erasing the disk).
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { cancellation } from '../core/cancel.js';
import type { Progress } from '../core/progress.js';
import { run } from '../core/exec.js';
import { hostRustArch } from '../boot/kargs.js';
import { answerKargs } from '../install/answers.js';
import { readDiskInventory } from '../disk/inventory.js';
import { checkInstallConfig, chooseRootFsType } from '../install/config.js';
import { loadInstallConfig } from '../install/config-files.js';
import { readImageFacts } from '../install/image-facts.js';
import { installToDisk } from '../install/to-disk.js';
import { parseRootSize } from '../install/options.js';
import { pullImage } from '../oci/pull.js';
import { formatImageName, parseReference } from '../oci/reference.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { toolVersion } from '../core/version.js';
import type { InstallChoices } from './choices.js';
import type { ImageDefaults, ImageSourceChoice, InstallOutcome, InstallerServices } from './services.js';

/** Where live systems mount removable media; each is searched two levels deep. */
export const MEDIA_ROOTS = ['/run/media', '/media', '/mnt', '/run/initramfs/live'];
const MAX_FOUND = 12;

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

/** `oci:DIR:tag` for each tagged manifest of an OCI layout, `oci:DIR` when untagged. */
async function layoutReferences(dir: string): Promise<string[]> {
  try {
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests?: Array<{ annotations?: Record<string, string> }> };
    const tags = (index.manifests ?? []).map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((t): t is string => !!t);
    return tags.length > 0 ? tags.map((t) => `oci:${dir}:${t}`) : [`oci:${dir}`];
  } catch {
    return [];
  }
}

export async function findImagesOnMedia(roots: readonly string[] = MEDIA_ROOTS): Promise<ImageSourceChoice[]> {
  const found: ImageSourceChoice[] = [];
  const visit = async (dir: string, depth: number, root: string): Promise<void> => {
    if (found.length >= MAX_FOUND) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    if (entries.some((e) => e.name === 'oci-layout' && e.isFile())) {
      for (const reference of await layoutReferences(dir)) found.push({ reference, origin: `on ${root}` });
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isFile() && /\.(tar|ociarchive)$/.test(e.name)) found.push({ reference: `oci-archive:${path}`, origin: `on ${root}` });
      else if (e.isDirectory() && depth > 0) await visit(path, depth - 1, root);
    }
  };
  for (const root of roots) if (await isDir(root)) await visit(root, 2, root);
  return found.slice(0, MAX_FOUND);
}

export interface MachineOptions {
  storeDir: string;
  logPath: string;
}

export class Machine implements InstallerServices {
  readonly logPath: string;
  /** Why the install failed, for the command's own error report after the screen is gone. */
  failure: unknown;
  constructor(private readonly opts: MachineOptions) {
    this.logPath = opts.logPath;
  }

  imageSources(): Promise<ImageSourceChoice[]> {
    return findImagesOnMedia();
  }

  async readImage(source: string): Promise<ImageDefaults> {
    const pulled = await pullImage(parseReference(source), { cacheDir: this.opts.storeDir, signal: cancellation.signal });
    const facts = await readImageFacts(pulled);
    const config = await loadInstallConfig(facts.installConfigFiles, { arch: hostRustArch() });
    // An image whose install config cannot be honoured is refused when chosen, not after the confirmation.
    checkInstallConfig(config, 'to-disk');
    return {
      filesystem: chooseRootFsType(undefined, config),
      configKargs: config?.kargs ?? [],
      ...(config?.stateroot !== undefined ? { stateroot: config.stateroot } : {}),
      digest: pulled.manifestDigest,
    };
  }

  listDisks(source: string) {
    return readDiskInventory(source);
  }

  async checkReadable(path: string): Promise<string | null> {
    try {
      await access(path, constants.R_OK);
      return (await stat(path)).isFile() ? null : 'not a regular file';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    }
  }

  async saveAnswers(path: string, text: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, text, 0o600);
  }

  async install(c: InstallChoices, progress: Progress): Promise<InstallOutcome> {
    try {
      return await this.installOnce(c, progress);
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  private async installOnce(c: InstallChoices, progress: Progress): Promise<InstallOutcome> {
    const image = parseReference(c.source);
    const target = c.target !== undefined ? parseReference(c.target) : undefined;
    const result = await installToDisk({
      device: c.disk.path,
      image,
      ...(target !== undefined ? { targetImage: { image: formatImageName(target), transport: target.transport } } : {}),
      viaLoopback: false,
      wipe: true,
      filesystem: c.filesystem,
      ...(c.rootSize !== undefined ? { rootSizeBytes: parseRootSize(c.rootSize) } : {}),
      kargs: answerKargs(c),
      kargDeletes: [],
      ...(c.rootSshAuthorizedKeys !== undefined ? { rootSshAuthorizedKeysFile: c.rootSshAuthorizedKeys } : {}),
      ...(c.stateroot !== undefined ? { stateroot: c.stateroot } : {}),
      ...(c.user !== undefined ? { users: [c.user] } : {}),
      genericImage: false,
      storeDir: this.opts.storeDir,
      installerVersion: toolVersion(),
      progress,
    });
    return {
      summary: [
        `Image: ${c.source}`,
        `Digest: ${result.manifestDigest}`,
        `Deployment: ${result.deployment.stateroot}/${result.deployment.id}`,
        `Root filesystem: ${result.rootFsType} UUID=${result.rootFsUuid}`,
        `Kernel arguments: ${result.boot.kernelArguments.join(' ')}`,
        ...(c.user !== undefined ? [`User: ${c.user.name}`] : []),
      ],
    };
  }

  stopInstall(): void {
    cancellation.abort('SIGINT');
  }

  async reboot(): Promise<void> {
    await run({ description: 'Rebooting', argv: ['systemctl', 'reboot'] });
  }
}
