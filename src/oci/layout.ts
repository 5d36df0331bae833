/**
 * The `oci:DIR[:REF]` and `oci-archive:FILE[:REF]` transports: an OCI image layout as a
 * directory, or the same layout inside a tar file. Both are read through `LayoutFiles`, so
 * the archive is indexed in place (see tar-index.ts) instead of being extracted.
 *
 * REF matches the `org.opencontainers.image.ref.name` annotation of an entry in index.json,
 * as skopeo does; without REF the layout must hold exactly one image.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';
import { REF_NAME_ANNOTATION } from './blob-cache.js';
import { sha256Hex } from './digest.js';
import { MAX_MANIFEST_BYTES } from './manifest.js';
import { TarIndex } from './tar-index.js';
import type { BlobFetchOptions, BlobLocation, Descriptor, FetchedManifest, ImageReference, ImageSource } from './types.js';

/** Read access to the files of a layout, wherever they are stored. */
export interface LayoutFiles {
  /** "OCI layout /srv/os" or "OCI archive /media/os.tar", for messages. */
  readonly description: string;
  /** At most `limit` bytes of a file (so an oversized one can be rejected), or undefined when absent. */
  readPrefix(path: string, limit: number): Promise<Buffer | undefined>;
  open(path: string, offset: number, signal?: AbortSignal): Promise<NodeJS.ReadableStream | undefined>;
  /** The file and byte range holding `path`, or undefined when absent. */
  locate(path: string): Promise<BlobLocation | undefined>;
  close(): Promise<void>;
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class DirectoryLayoutFiles implements LayoutFiles {
  readonly description: string;
  constructor(private readonly dir: string) {
    this.description = `OCI layout ${dir}`;
  }

  async readPrefix(path: string, limit: number): Promise<Buffer | undefined> {
    let handle;
    try {
      handle = await open(join(this.dir, path), 'r');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    try {
      const size = Math.min((await handle.stat()).size, limit);
      const buffer = Buffer.alloc(size);
      const { bytesRead } = await handle.read(buffer, 0, size, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async open(path: string, offset: number, signal?: AbortSignal): Promise<NodeJS.ReadableStream | undefined> {
    const full = join(this.dir, path);
    try {
      await stat(full);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    return createReadStream(full, { start: offset, highWaterMark: 1 << 20, ...(signal ? { signal } : {}) });
  }

  async locate(path: string): Promise<BlobLocation | undefined> {
    const full = join(this.dir, path);
    try {
      return { path: full, start: 0, end: (await stat(full)).size - 1 };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {}
}

export class ArchiveLayoutFiles implements LayoutFiles {
  readonly description: string;
  private constructor(private readonly tar: TarIndex) {
    this.description = `OCI archive ${tar.path}`;
  }

  static async open(path: string): Promise<ArchiveLayoutFiles> {
    return new ArchiveLayoutFiles(await TarIndex.open(path, 'OCI archive'));
  }

  async readPrefix(path: string, limit: number): Promise<Buffer | undefined> {
    const entry = this.tar.get(path);
    if (!entry) return undefined;
    return this.tar.read({ offset: entry.offset, size: Math.min(entry.size, limit) });
  }

  async open(path: string, offset: number, signal?: AbortSignal): Promise<NodeJS.ReadableStream | undefined> {
    const entry = this.tar.get(path);
    if (!entry) return undefined;
    return this.tar.stream(entry, offset, signal);
  }

  async locate(path: string): Promise<BlobLocation | undefined> {
    const entry = this.tar.get(path);
    return entry ? { path: this.tar.path, start: entry.offset, end: entry.offset + entry.size - 1 } : undefined;
  }

  close(): Promise<void> {
    return this.tar.close();
  }
}

interface LayoutIndex {
  manifests: Descriptor[];
}

/** Find the index.json entry a reference names; pure, so the messages are unit-tested. */
export function selectLayoutEntry(index: LayoutIndex, refName: string | undefined, description: string, transport: string, location: string): Descriptor {
  const names = index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]).filter((n): n is string => n !== undefined);
  const listed = names.length > 0 ? names.join(', ') : 'no named images';
  if (refName === undefined) {
    if (index.manifests.length === 1) return index.manifests[0]!;
    throw new UserError(
      index.manifests.length === 0
        ? `${description} holds no images`
        : `${description} holds ${index.manifests.length} images; say which one (it has: ${listed})`,
      { hint: names.length > 0 ? `name one after the path, e.g. ${transport}:${location}:${names[0]}` : 'point the reference at a layout that holds an image' },
    );
  }
  const found = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] === refName);
  if (found.length === 0) {
    throw new UserError(`${description} has no image named "${refName}"; it has: ${listed}`, {
      hint: names.length > 0 ? `use one of those, e.g. ${transport}:${location}:${names[0]}` : 'check the path of the layout',
    });
  }
  return found[0]!;
}

export class OciLayoutSource implements ImageSource {
  private constructor(
    readonly reference: ImageReference,
    private readonly files: LayoutFiles,
    private readonly top: Descriptor | undefined,
  ) {}

  /** Open a layout through `files`; closes them if the layout is unusable. */
  static async open(reference: ImageReference, files: LayoutFiles): Promise<OciLayoutSource> {
    try {
      const layoutFile = await files.readPrefix('oci-layout', 64 * 1024);
      if (layoutFile === undefined) {
        throw new UserError(`${files.description} is not an OCI image layout: it has no oci-layout file`, {
          hint: 'write an image there with `skopeo copy IMAGE oci:DIR:tag`, or check the path',
        });
      }
      const version = (JSON.parse(layoutFile.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
      if (typeof version !== 'string' || !version.startsWith('1.')) {
        throw new UserError(`${files.description} has unsupported imageLayoutVersion ${JSON.stringify(version)}`, {
          hint: 'only OCI image layout version 1.x is supported',
        });
      }
      let top: Descriptor | undefined;
      if (reference.digest === undefined) {
        const indexBytes = await files.readPrefix('index.json', MAX_MANIFEST_BYTES + 1);
        if (indexBytes === undefined) {
          throw new UserError(`${files.description} has no index.json`, { hint: 'the layout is incomplete; copy the image again' });
        }
        let index: LayoutIndex;
        try {
          index = JSON.parse(indexBytes.toString('utf8')) as LayoutIndex;
        } catch {
          throw new UserError(`${files.description} has a malformed index.json`, { hint: 'the layout is damaged; copy the image again' });
        }
        if (!Array.isArray(index.manifests)) {
          throw new UserError(`${files.description} has a malformed index.json: no manifests list`, { hint: 'the layout is damaged; copy the image again' });
        }
        top = selectLayoutEntry(index, reference.tag, files.description, reference.transport, reference.name);
      }
      return new OciLayoutSource(reference, files, top);
    } catch (err) {
      await files.close();
      throw err;
    }
  }

  private blobPathOf(digest: string): string {
    return `blobs/sha256/${sha256Hex(digest, `blob ${digest} in ${this.files.description}`)}`;
  }

  private missing(digest: string): UserError {
    return new UserError(`blob ${digest} is missing from ${this.files.description}`, {
      hint: 'the layout is incomplete or damaged; copy the image into it again',
    });
  }

  async getManifest(digest?: string): Promise<FetchedManifest> {
    const wanted = digest ?? this.top?.digest ?? this.reference.digest;
    if (wanted === undefined) throw this.missing('(none)');
    const bytes = await this.files.readPrefix(this.blobPathOf(wanted), MAX_MANIFEST_BYTES + 1);
    if (bytes === undefined) throw this.missing(wanted);
    const mediaType = wanted === this.top?.digest ? this.top.mediaType : '';
    return { bytes, mediaType, digest: wanted };
  }

  async getBlob(descriptor: Descriptor, options: BlobFetchOptions = {}): Promise<NodeJS.ReadableStream> {
    const stream = await this.files.open(this.blobPathOf(descriptor.digest), options.offset ?? 0, options.signal);
    if (stream === undefined) throw this.missing(descriptor.digest);
    return stream;
  }

  blobInPlace(descriptor: Descriptor): Promise<BlobLocation | undefined> {
    return this.files.locate(this.blobPathOf(descriptor.digest));
  }

  close(): Promise<void> {
    return this.files.close();
  }
}

export function openOciLayoutSource(reference: ImageReference): Promise<OciLayoutSource> {
  return OciLayoutSource.open(reference, new DirectoryLayoutFiles(reference.name));
}

export async function openOciArchiveSource(reference: ImageReference): Promise<OciLayoutSource> {
  return OciLayoutSource.open(reference, await ArchiveLayoutFiles.open(reference.name));
}
