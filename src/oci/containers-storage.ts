/**
 * The `containers-storage:NAME` transport: an image in the local podman store. Podman's
 * store is private to containers/storage (its layout, locking and drivers change between
 * versions), so we never read it; podman exports the image as an oci-archive into a temp
 * directory and we read that. Podman writes uncompressed layers, so the export costs one
 * sequential write of the image and no compression CPU.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ExternalCommandError, InterruptedError, UserError } from '../core/errors.js';
import { run } from '../core/exec.js';
import { ArchiveLayoutFiles, OciLayoutSource } from './layout.js';
import { formatImageName } from './reference.js';
import type { BlobFetchOptions, Descriptor, FetchedManifest, ImageReference, ImageSource } from './types.js';

/** Large scratch space: /var/tmp rather than /tmp, which is often a small tmpfs. */
function scratchDir(): string {
  return process.env['TMPDIR'] ?? '/var/tmp';
}

export class ContainersStorageSource implements ImageSource {
  private constructor(
    readonly reference: ImageReference,
    private readonly layout: OciLayoutSource,
    private readonly tempDir: string,
  ) {}

  static async open(reference: ImageReference, signal?: AbortSignal): Promise<ContainersStorageSource> {
    const name = formatImageName(reference);
    const tempDir = await mkdtemp(join(scratchDir(), 'bootc-storage-export-'));
    try {
      const archive = join(tempDir, 'image.tar');
      try {
        await run({
          description: `Exporting ${name} from the local container storage`,
          argv: ['podman', 'image', 'save', '--quiet', '--format', 'oci-archive', '--output', archive, name],
          hint: 'check the image with `podman image exists NAME`',
        });
      } catch (err) {
        if (err instanceof ExternalCommandError && /image not known|no such image|not found/i.test(err.stderr)) {
          throw new UserError(`image ${name} is not in the local container storage`, {
            hint: 'list the images with `podman images`, or pull it first with `podman pull`',
          });
        }
        throw err;
      }
      if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
      const layoutRef: ImageReference = { transport: 'oci-archive', name: archive };
      const layout = await OciLayoutSource.open(layoutRef, await ArchiveLayoutFiles.open(archive));
      return new ContainersStorageSource(reference, layout, tempDir);
    } catch (err) {
      await rm(tempDir, { recursive: true, force: true });
      throw err;
    }
  }

  getManifest(digest?: string): Promise<FetchedManifest> {
    return this.layout.getManifest(digest);
  }

  getBlob(descriptor: Descriptor, options?: BlobFetchOptions): Promise<NodeJS.ReadableStream> {
    return this.layout.getBlob(descriptor, options);
  }

  async close(): Promise<void> {
    try {
      await this.layout.close();
    } finally {
      await rm(this.tempDir, { recursive: true, force: true });
    }
  }
}

export function openContainersStorageSource(reference: ImageReference, signal?: AbortSignal): Promise<ContainersStorageSource> {
  return ContainersStorageSource.open(reference, signal);
}
