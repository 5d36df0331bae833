/**
 * From a pulled image to a deployment on a physical root. Shared by `image build-disk`,
 * `install` and the updates; none of them import each other.
 *
 *   1. import: each layer (decompressed, diff-id checked) into the object store, then the
 *      merged tree of the image; manifest and config kept beside it
 *   2. check the tree: a kernel and a systemd-based initramfs, no /usr/etc of its own
 *   3. check out: hardlinks into the objects; the image's /etc linked at /usr/etc (pristine)
 *      and copied to /etc (the deployment's own, writable); /var seeded into the stateroot
 *      only on its first deployment; empty mountpoints for /var and /sysroot
 *   4. record the origin (written last: a deployment without an origin is incomplete and is
 *      never booted or listed)
 */
import { mkdir, readdir } from 'node:fs/promises';
import { pathExists } from '../core/fs-probe.js';
import { join } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { cancellation } from '../core/cancel.js';
import { Progress } from '../core/progress.js';
import { BlobCache } from '../oci/blob-cache.js';
import { openLayer } from '../oci/layer.js';
import { imageVersion, type ImageConfig } from '../oci/manifest.js';
import type { PulledImage } from '../oci/pull.js';
import { formatReference } from '../oci/reference.js';
import { checkoutTree } from '../store/checkout.js';
import type { TreeEntry, TreeIndex } from '../store/index-format.js';
import { importLayers } from '../store/layer-import.js';
import { imageDir, objectPath, storeLayout } from '../store/layout.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { loadImageTree, writeImageTree } from '../store/tree.js';
import { hostRustArch, kargsFromKargsD, loadKargsD, type RustArch } from '../boot/kargs.js';
import { checkSystemdInitramfs } from '../boot/initramfs.js';
import { kernelVersionOf, MODULES_DIR } from '../boot/kernel.js';
import { renderOrigin, type Origin } from './origin.js';
import { checkStateroot, deploymentId, nextSerial, sysrootPaths } from './paths.js';
import { removeTree } from '../core/remove-tree.js';

export interface ImportedImage {
  manifestDigest: string;
  configDigest: string;
  config: ImageConfig;
  tree: TreeIndex;
}

const CREATED_LABEL = 'org.opencontainers.image.created';

export function imageCreated(config: ImageConfig): string | null {
  return config.labels[CREATED_LABEL] ?? config.created ?? null;
}

/** Step 1. */
export async function importImage(root: string, pulled: PulledImage, progress: Progress = Progress.silent()): Promise<ImportedImage> {
  const name = formatReference(pulled.reference);
  return withContext(`Importing image ${name}`, async () => {
    const cache = await BlobCache.open(pulled.cacheDir);
    const total = pulled.layers.length;
    const step = (done: number) =>
      progress.emit({
        type: 'ProgressSteps',
        task: 'importing',
        description: `Importing image: ${pulled.manifestDigest}`,
        id: pulled.manifestDigest,
        stepsCached: 0,
        steps: done,
        stepsTotal: total,
        subtasks: pulled.layers.map((l, i) => ({
          subtask: 'layer',
          description: `Importing layer ${i + 1}/${total}`,
          id: l.descriptor.digest.slice(7, 28),
          completed: i < done,
        })),
      });
    cancellation.check();
    await importLayers(
      root,
      pulled.layers.map((layer) => ({ diffId: layer.diffId, digest: layer.descriptor.digest, open: () => openLayer(cache, layer, layer.diffId, name) })),
      { signal: cancellation.signal, onLayer: step },
    );
    step(total);
    const diffIds = pulled.layers.map((l) => l.diffId);
    const tree = await writeImageTree(root, pulled.manifestDigest, diffIds);
    const dir = imageDir(storeLayout(root), pulled.manifestDigest);
    await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(pulled.config) + '\n', 0o600);
    return { manifestDigest: pulled.manifestDigest, configDigest: pulled.configDigest, config: pulled.config, tree };
  });
}

/** An image already in the store (e.g. the booted one), by manifest digest. */
export async function loadImportedImage(root: string, manifestDigest: string, configDigest: string, config: ImageConfig): Promise<ImportedImage> {
  return { manifestDigest, configDigest, config, tree: await loadImageTree(root, manifestDigest) };
}

export interface ImageKernel {
  kernelVersion: string;
}

/** Step 2, on the tree index alone, so a bad image fails before anything is checked out. */
export function checkBootableTree(entries: readonly TreeEntry[], imageName: string): ImageKernel {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const kernelVersion = kernelVersionOf(
    entries.filter((e) => e.kind === 'file').map((e) => e.path),
    `image ${imageName}`,
  );
  if (byPath.get('usr/etc') && byPath.get('etc')) {
    throw new UserError(`image ${imageName} has both /etc and /usr/etc`, {
      hint: 'keep configuration in /etc only; /usr/etc is where bootc keeps the pristine copy of the image /etc',
    });
  }
  return { kernelVersion };
}

export interface DeployOptions {
  stateroot: string;
  /** The image to follow for updates. */
  targetImage: Origin['image'];
  /** Machine-local kernel arguments (--karg, install config), recorded in the origin. */
  kargs: readonly string[];
  architecture: string;
  arch?: RustArch;
  now?: Date;
  /** Recorded in the origin; default type1. */
  bootType?: 'type1' | 'uki';
}

export interface Deployment {
  stateroot: string;
  id: string;
  dir: string;
  origin: Origin;
  /** True when this deployment seeded the stateroot's /var (its first deployment). */
  seededVar: boolean;
}

async function listDeploymentIds(deployDir: string): Promise<string[]> {
  try {
    return (await readdir(deployDir)).filter((n) => !n.endsWith('.origin') && !n.startsWith('.'));
  } catch {
    return [];
  }
}

/** Steps 2-4. */
export async function createDeployment(root: string, image: ImportedImage, imageName: string, options: DeployOptions): Promise<Deployment> {
  const stateroot = checkStateroot(options.stateroot);
  const { kernelVersion } = checkBootableTree(image.tree.entries, imageName);
  // Read from the object store, so a bad image fails before anything is checked out.
  const initramfsPath = `${MODULES_DIR}/${kernelVersion}/initramfs.img`;
  const initramfs = image.tree.entries.find((e) => e.path === initramfsPath);
  if (initramfs?.kind === 'file') {
    await checkSystemdInitramfs(objectPath(storeLayout(root), initramfs.object), { imageName, pathInImage: `/${initramfsPath}` });
  }
  const paths = sysrootPaths(root);
  const deployDir = paths.deployDir(stateroot);
  await mkdir(deployDir, { recursive: true, mode: 0o755 });
  const id = deploymentId(image.manifestDigest, nextSerial(await listDeploymentIds(deployDir), image.manifestDigest));
  const dir = paths.deployment(stateroot, id);
  return withContext(`Deploying ${imageName} as ${stateroot}/${id}`, async () => {
    try {
      await checkoutTree(root, image.tree, dir, {
        rules: [
          { path: 'etc', method: 'hardlink', destination: join(dir, 'usr', 'etc') },
          { path: 'var', method: 'mountpoint' },
        ],
      });
      cancellation.check();
      if (image.tree.entries.some((e) => e.path === 'etc')) {
        await checkoutTree(root, image.tree, join(dir, 'etc'), { subtree: 'etc', method: 'copy' });
      }
      const stateVar = paths.stateVar(stateroot);
      const seededVar = !(await pathExists(stateVar));
      if (seededVar && image.tree.entries.some((e) => e.path === 'var')) {
        await mkdir(join(stateVar, '..'), { recursive: true, mode: 0o755 });
        await checkoutTree(root, image.tree, stateVar, { subtree: 'var', method: 'copy' });
      } else if (seededVar) {
        await mkdir(stateVar, { recursive: true, mode: 0o755 });
      }
      const kargsFromImage = kargsFromKargsD(await loadKargsD(dir), options.arch ?? hostRustArch());
      await mkdir(join(dir, 'var'), { recursive: true, mode: 0o755 });
      await mkdir(join(dir, 'sysroot'), { recursive: true, mode: 0o755 });
      const origin: Origin = {
        version: 1,
        stateroot,
        id,
        image: options.targetImage,
        manifestDigest: image.manifestDigest,
        configDigest: image.configDigest,
        architecture: options.architecture,
        imageVersion: imageVersion(image.config) ?? null,
        imageCreated: imageCreated(image.config),
        kernelVersion,
        kargs: [...options.kargs],
        kargsFromImage,
        createdAt: (options.now ?? new Date()).toISOString(),
        pinned: false,
        bootType: options.bootType ?? 'type1',
      };
      await writeFileAtomic(paths.origin(stateroot, id), renderOrigin(origin), 0o644);
      return { stateroot, id, dir, origin, seededVar };
    } catch (err) {
      // Nothing half-written: a failed deployment leaves no directory behind.
      await removeTree(dir);
      throw err;
    }
  });
}
