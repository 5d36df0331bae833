/**
 * The shapes shared by every way of getting an image (registry, OCI layout, archives,
 * containers-storage). A transport turns a reference into an ImageSource; the puller only
 * talks to ImageSource, so verification, caching and progress are written once.
 */

export type Transport = 'registry' | 'oci' | 'oci-archive' | 'docker-archive' | 'containers-storage';

/** A parsed `[transport:]name[:tag][@digest]`. */
export interface ImageReference {
  transport: Transport;
  /**
   * registry / containers-storage: the normalised repository, e.g. `docker.io/library/debian`,
   * `localhost:5000/fixture`. oci / oci-archive / docker-archive: the path.
   */
  name: string;
  /** registry: `latest` when neither tag nor digest was given. oci/oci-archive: the ref name. */
  tag?: string;
  digest?: string;
  /** For registry refs: host[:port], e.g. `docker.io`, `127.0.0.1:5000`. */
  registry?: string;
  /** For registry refs: repository path inside the registry, e.g. `library/debian`. */
  repository?: string;
}

/** An OCI content descriptor (image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

/** Raw manifest bytes as served, with the digest they were addressed by (or hash to). */
export interface FetchedManifest {
  bytes: Uint8Array;
  mediaType: string;
  digest: string;
}

export interface BlobFetchOptions {
  /** Resume from this byte offset (registry: HTTP Range). */
  offset?: number;
  signal?: AbortSignal;
}

/**
 * What a transport may attach to the stream getBlob returns. `startOffset` is the byte the
 * stream really starts at: the requested offset, or 0 when the source could not resume (a
 * registry that ignored the Range header), in which case the reader starts over. Absent
 * means the requested offset.
 */
export interface BlobStreamInfo {
  startOffset?: number;
}

/**
 * Where an image's manifests and blobs come from. Implementations do transport work only:
 * they do not verify digests (the puller does) and they hold no cache.
 */
/** Where a local source keeps a blob's bytes: a byte range of a file (a layout's blob, or inside an archive). */
export interface BlobLocation {
  path: string;
  /** First and last byte, inclusive (as createReadStream takes them). */
  start: number;
  end: number;
}

export interface ImageSource {
  readonly reference: ImageReference;
  /**
   * Local layouts and archives only: where the blob's bytes are, to be read in place
   * instead of copied into the cache; undefined when the source does not hold it.
   */
  blobInPlace?(descriptor: Descriptor): Promise<BlobLocation | undefined>;
  /** Fetch the manifest (or index) the reference points at, or a specific one by digest. */
  getManifest(digest?: string): Promise<FetchedManifest>;
  /** A readable stream of the blob's bytes, starting at `offset`. */
  getBlob(descriptor: Descriptor, options?: BlobFetchOptions): Promise<NodeJS.ReadableStream>;
  /** Credentials or temp files to release. */
  close(): Promise<void>;
  /**
   * Registries only: the raw manifest stored under `tag` (sigstore signatures live at
   * `sha256-<hex>.sig`), or null when there is none. Read from the endpoint that served the image.
   */
  getTaggedManifest?(tag: string, options?: { signal?: AbortSignal }): Promise<Uint8Array | null>;
}
