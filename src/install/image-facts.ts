/**
 * What an install needs to know about the image before touching the disk, from one pass
 * over its layers: the install configuration fragments it ships, and whether it has
 * exactly one kernel with an initramfs (the rule of boot/kernel.ts, which deploy's
 * checkBootableTree applies again to the imported tree).
 */
import { kernelVersionOf } from '../boot/kernel.js';
import type { PulledImage } from '../oci/pull.js';
import { formatReference } from '../oci/reference.js';
import { INSTALL_CONFIG_IMAGE_DIR, type InstallConfigFile } from './config.js';
import type { TreeIndex } from '../store/index-format.js';
import { LayerScanner, filesInDirectory, readImageFiles, readImageFilesOfTree, type ImageFileSelection, type ImageFiles } from './image-files.js';

const KERNEL_FILE = /^usr\/lib\/modules\/[^/]+\/(vmlinuz|initramfs\.img)$/;
const CONFIG_FILE = new RegExp(`^${INSTALL_CONFIG_IMAGE_DIR.replace(/\//g, '\\/')}\\/[^/]+\\.toml$`);

export interface ImageFacts {
  installConfigFiles: InstallConfigFile[];
  kernelVersion: string;
}

/** The kernel rule (boot/kernel.ts) on the paths selected from the layers; throws with the image named. */
export function kernelOf(files: ImageFiles, imageName: string): string {
  return kernelVersionOf(files.keys(), `image ${imageName}`);
}

const FACT_FILES: ImageFileSelection = {
  select: (p) => KERNEL_FILE.test(p) || CONFIG_FILE.test(p),
  readText: (p) => CONFIG_FILE.test(p),
};

/** Gathers the facts while the pull downloads the layers: give its `tap` to pullImage as `layerTap`. */
export function imageFactsScanner(imageName: string): LayerScanner {
  return new LayerScanner(FACT_FILES, imageName);
}

/** `scanner`: the one whose tap saw the pull (layers it did not see are read from the cache). */
export async function readImageFacts(pulled: PulledImage, scanner?: LayerScanner): Promise<ImageFacts> {
  return factsOf(await readImageFiles(pulled, FACT_FILES, scanner), formatReference(pulled.reference));
}

/** The same facts of an image imported into the store under `root`, from its tree. */
export async function readImageFactsOfTree(root: string, tree: TreeIndex, imageName: string): Promise<ImageFacts> {
  return factsOf(await readImageFilesOfTree(root, tree, FACT_FILES), imageName);
}

function factsOf(files: ImageFiles, imageName: string): ImageFacts {
  return {
    installConfigFiles: filesInDirectory(files, INSTALL_CONFIG_IMAGE_DIR).map((f) => ({ path: `/${f.path}`, text: f.text })),
    kernelVersion: kernelOf(files, imageName),
  };
}
