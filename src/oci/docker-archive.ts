/**
 * The `docker-archive:FILE` transport: a `docker save` (or `skopeo copy … docker-archive:`)
 * tarball. It has no manifest in registry form, only `manifest.json` naming a config file
 * and layer tars, so we synthesise a Docker schema 2 manifest from it, as containers/image
 * does. Layer digests: an uncompressed layer's digest is its diff-id from the config (the
 * puller verifies it like any blob); a compressed one is hashed here once.
 */
import { UserError } from '../core/errors.js';
import { digestOf, newSha256, sha256Digest } from './digest.js';
import { MAX_CONFIG_BYTES, MediaType } from './manifest.js';
import { TarIndex, type TarEntry } from './tar-index.js';
import type { BlobFetchOptions, Descriptor, FetchedManifest, ImageReference, ImageSource } from './types.js';

interface ArchiveImage {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(bytes: Buffer, magic: number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

/** The layer media type a blob's first bytes call for. */
export function layerTypeOf(head: Buffer): string {
  if (startsWith(head, GZIP_MAGIC)) return MediaType.dockerLayerGzip;
  if (startsWith(head, ZSTD_MAGIC)) return MediaType.ociLayerZstd;
  return MediaType.dockerLayer;
}

export class DockerArchiveSource implements ImageSource {
  private constructor(
    readonly reference: ImageReference,
    private readonly tar: TarIndex,
    private readonly manifestBytes: Buffer,
    private readonly blobs: Map<string, TarEntry>,
  ) {}

  static async open(reference: ImageReference): Promise<DockerArchiveSource> {
    const tar = await TarIndex.open(reference.name, 'docker archive');
    try {
      return await DockerArchiveSource.build(reference, tar);
    } catch (err) {
      await tar.close();
      throw err;
    }
  }

  private static async build(reference: ImageReference, tar: TarIndex): Promise<DockerArchiveSource> {
    const where = `docker archive ${reference.name}`;
    const damaged = (detail: string): UserError =>
      new UserError(`${where} is not a usable \`docker save\` archive: ${detail}`, {
        hint: 'create it with `docker save IMAGE -o FILE` or `skopeo copy IMAGE docker-archive:FILE`',
      });
    const manifestEntry = tar.get('manifest.json');
    if (!manifestEntry) throw damaged('it has no manifest.json');
    let images: ArchiveImage[];
    try {
      images = JSON.parse((await tar.read(manifestEntry)).toString('utf8')) as ArchiveImage[];
    } catch {
      throw damaged('manifest.json is not JSON');
    }
    if (!Array.isArray(images) || images.length === 0) throw damaged('manifest.json lists no images');
    if (images.length > 1) {
      const tags = images.flatMap((i) => i.RepoTags ?? []);
      throw new UserError(`${where} holds ${images.length} images (${tags.join(', ') || 'untagged'}); only single-image archives are supported`, {
        hint: 'save one image per archive: `docker save IMAGE -o FILE`',
      });
    }
    const image = images[0]!;
    if (typeof image.Config !== 'string' || !Array.isArray(image.Layers)) throw damaged('manifest.json lacks Config or Layers');

    const configEntry = tar.get(image.Config);
    if (!configEntry) throw damaged(`the config file ${image.Config} is missing`);
    if (configEntry.size > MAX_CONFIG_BYTES) throw damaged(`the config file is ${configEntry.size} bytes`);
    const configBytes = await tar.read(configEntry);
    let diffIds: unknown;
    try {
      diffIds = (JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
    } catch {
      throw damaged(`the config file ${image.Config} is not JSON`);
    }
    if (!Array.isArray(diffIds) || diffIds.length !== image.Layers.length) {
      throw damaged('the config lists a different number of diff-ids than there are layers');
    }

    const blobs = new Map<string, TarEntry>();
    const configDigest = sha256Digest(configBytes);
    blobs.set(configDigest, configEntry);
    const layers: Descriptor[] = [];
    for (const [i, path] of image.Layers.entries()) {
      const entry = tar.get(path);
      if (!entry) throw damaged(`layer file ${path} is missing`);
      const head = await tar.read({ offset: entry.offset, size: Math.min(entry.size, 4) });
      const mediaType = layerTypeOf(head);
      const digest = mediaType === MediaType.dockerLayer ? String(diffIds[i]) : await hashEntry(tar, entry);
      blobs.set(digest, entry);
      layers.push({ mediaType, digest, size: entry.size });
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: configDigest },
      layers,
    };
    return new DockerArchiveSource(reference, tar, Buffer.from(JSON.stringify(manifest)), blobs);
  }

  async getManifest(digest?: string): Promise<FetchedManifest> {
    const own = sha256Digest(this.manifestBytes);
    if (digest !== undefined && digest !== own) {
      throw new UserError(`docker archive ${this.reference.name} has no manifest ${digest}`, {
        hint: 'a docker archive holds one image; refer to it without a digest',
      });
    }
    return { bytes: this.manifestBytes, mediaType: MediaType.dockerManifest, digest: own };
  }

  async getBlob(descriptor: Descriptor, options: BlobFetchOptions = {}): Promise<NodeJS.ReadableStream> {
    const entry = this.blobs.get(descriptor.digest);
    if (!entry) {
      throw new UserError(`blob ${descriptor.digest} is not in docker archive ${this.reference.name}`, {
        hint: 'the archive is damaged; save the image again',
      });
    }
    return this.tar.stream(entry, options.offset ?? 0, options.signal);
  }

  close(): Promise<void> {
    return this.tar.close();
  }
}

async function hashEntry(tar: TarIndex, entry: TarEntry): Promise<string> {
  const hash = newSha256();
  for await (const chunk of tar.stream(entry) as AsyncIterable<Buffer>) hash.update(chunk);
  return digestOf(hash);
}

export function openDockerArchiveSource(reference: ImageReference): Promise<DockerArchiveSource> {
  return DockerArchiveSource.open(reference);
}
