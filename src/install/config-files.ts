/**
 * Loads the install configuration: the image's `/usr/lib/bootc/install/*.toml` (read from
 * its layers, or from a tree on disk) and the installing host's directories after it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withContext } from '../core/errors.js';
import { hostRustArch, type RustArch } from '../boot/kargs.js';
import type { PulledImage } from '../oci/pull.js';
import { INSTALL_CONFIG_HOST_DIRS, INSTALL_CONFIG_IMAGE_DIR, resolveInstallConfig, type InstallConfig, type InstallConfigFile } from './config.js';
import { filesInDirectory, readImageFiles } from './image-files.js';

async function readTomlDir(dir: string): Promise<InstallConfigFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
  const files: InstallConfigFile[] = [];
  for (const name of names.filter((n) => n.endsWith('.toml')).sort()) {
    files.push({ path: join(dir, name), text: await readFile(join(dir, name), 'utf8') });
  }
  return files;
}

/** The host's fragments, lowest precedence first; `hostRoot` lets tests use a temp tree. */
export async function readHostInstallConfigFiles(hostRoot = '/'): Promise<InstallConfigFile[]> {
  const files: InstallConfigFile[] = [];
  for (const dir of INSTALL_CONFIG_HOST_DIRS) files.push(...(await readTomlDir(join(hostRoot, dir))));
  return files;
}

export interface LoadInstallConfigOptions {
  hostRoot?: string;
  arch?: RustArch;
}

/** The image's fragments (already read) plus the host's, merged. */
export async function loadInstallConfig(imageFiles: readonly InstallConfigFile[], options: LoadInstallConfigOptions = {}): Promise<InstallConfig | null> {
  return withContext('Loading the install configuration', async () => {
    const host = await readHostInstallConfigFiles(options.hostRoot);
    return resolveInstallConfig([...imageFiles, ...host], options.arch ?? hostRustArch());
  });
}

/** Fragments shipped in a pulled image, displayed with their path in the image. */
export async function readImageInstallConfigFiles(pulled: PulledImage): Promise<InstallConfigFile[]> {
  const prefix = INSTALL_CONFIG_IMAGE_DIR + '/';
  const files = await readImageFiles(pulled, {
    select: (p) => p.startsWith(prefix) && p.endsWith('.toml') && !p.slice(prefix.length).includes('/'),
    readText: () => true,
  });
  return filesInDirectory(files, INSTALL_CONFIG_IMAGE_DIR).map((f) => ({ path: `/${f.path}`, text: f.text }));
}

/** Fragments of a tree on disk (a mounted root or an unpacked image). */
export function readTreeInstallConfigFiles(treeDir: string): Promise<InstallConfigFile[]> {
  return readTomlDir(join(treeDir, INSTALL_CONFIG_IMAGE_DIR));
}
