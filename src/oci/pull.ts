/**
 * Pulling an image into the blob cache. Steps:
 *
 * 1. Open the transport's ImageSource for the reference.
 * 2. Fetch the manifest the reference names; verify its digest, then the signature policy
 *    (image-trust.ts) on exactly those bytes, before anything else of the image is read. An
 *    index is resolved to the manifest for the wanted platform (this machine's, or --platform).
 * 3. Fetch the config (from the cache when present), verify it, and check its platform
 *    and that it has one diff-id per layer.
 * 4. Fetch the layers missing from the cache, a few at a time; each is verified by size and
 *    digest before it gets its final name (and by diff-id too when asked; see verifyDiffIds).
 * 5. Store manifest and config in the cache and name the image in its index.json, so the
 *    cache is an OCI layout that other tools can read.
 *
 * A second pull of the same image reads only the manifest (and, for an index, the chosen
 * platform manifest): config and layers are found in the cache by digest.
 */
import { once } from 'node:events';
import { arch, endianness } from 'node:os';
import { PassThrough } from 'node:stream';
import { InterruptedError, UserError, withContext } from '../core/errors.js';
import { Progress, type BytesSubtask } from '../core/progress.js';
import { BlobCache, type BlobTap } from './blob-cache.js';
import { sha256Digest, shortLayerId } from './digest.js';
import {
  MAX_CONFIG_BYTES,
  checkConfigPlatform,
  checkManifestSize,
  ociPlatformFor,
  parseImageConfig,
  parseManifestDocument,
  selectPlatformManifest,
  type ImageConfig,
  type ImageManifest,
} from './manifest.js';
import { ImageTrust, type TrustVerdict } from './image-trust.js';
import { formatReference } from './reference.js';
import { openImageSource } from './transport.js';
import type { BlobLocation, Descriptor, FetchedManifest, ImageReference, ImageSource, Platform } from './types.js';

export interface PulledLayer {
  descriptor: Descriptor;
  diffId: string;
  /**
   * Set when the layer was left in its local source (PullOptions.layersInPlace): read it
   * there (oci/layer.ts openLayerBlob checks its digest as it reads), not from the cache.
   */
  inPlace?: BlobLocation;
}

export interface ImageMetadata {
  reference: ImageReference;
  manifestDigest: string;
  /** The manifest's descriptor (media type, digest, size; the platform when chosen from an index). */
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  manifestBytes: Uint8Array;
  config: ImageConfig;
  configDigest: string;
  configBytes: Uint8Array;
  /** False when the config came from the cache. */
  configFetched: boolean;
  layers: PulledLayer[];
}

export interface PulledImage {
  reference: ImageReference;
  manifestDigest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: string;
  layers: PulledLayer[];
  /** Where the blobs are: `<cacheDir>/blobs/sha256/<hex>`. */
  cacheDir: string;
  /** Blob bytes read from the source in this pull (manifests excluded). */
  bytesFetched: number;
  /** What the signature policy decided. */
  trust: TrustVerdict;
}

export interface FetchOptions {
  /** Default: this machine's (linux/amd64 on x86-64). */
  platform?: Platform;
  signal?: AbortSignal;
  /**
   * The signature policy the manifest must satisfy. pullImage loads containers/image's
   * default files when it is not given; fetchManifestAndConfig checks only when given.
   */
  trust?: ImageTrust;
}

export interface PullOptions extends FetchOptions {
  cacheDir: string;
  progress?: Progress;
  /** Layers downloaded at once. */
  concurrency?: number;
  /**
   * Also check each layer's diff-id while it downloads (default off). Measured with
   * bench/pull.ts on fixture:v2 from a local registry: 2.49 s with the check against 0.87 s
   * without (skopeo: 0.83-0.90 s), since gunzip costs more CPU than the transfer. The store
   * importer reads every layer through openLayer, which checks the diff-id anyway, so the
   * default only moves when a bad layer is noticed: at import, before anything is deployed.
   */
  verifyDiffIds?: boolean;
  /**
   * Layers the caller already has in another form (an update: the layers the sysroot's
   * store imported before) are not fetched; the caller must not read them from the cache.
   */
  alreadyHave?: (layer: PulledLayer) => Promise<boolean>;
  /**
   * Another reader of each layer's bytes while they download (install's look at the image's
   * files, which then costs no second read): opened per download attempt; its finish() runs
   * after the blob's digest check. Layers found in the cache are not downloaded, so not tapped.
   */
  layerTap?: (layer: PulledLayer, index: number) => BlobTap;
  /**
   * From a local layout or archive, leave the layers the cache lacks where they are
   * (PulledLayer.inPlace) instead of copying them into the cache: for a caller that imports
   * them once and keeps nothing else (install, build-disk). Their digests are checked when
   * they are read. The cache then does not record the image, since it lacks blobs of it
   * (nor when `alreadyHave` skipped a layer).
   */
  layersInPlace?: boolean;
}

/** This machine's platform in OCI terms. */
export function hostPlatform(): Platform {
  return ociPlatformFor(arch(), endianness());
}

function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
}

async function readLimited(stream: NodeJS.ReadableStream, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += bytes.length;
    if (total > limit) {
      (stream as { destroy?: () => void }).destroy?.();
      throw new UserError(`${what} is larger than the ${limit}-byte limit`, { hint: 'the image is damaged or hostile' });
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}

function verifyManifestBytes(fetched: FetchedManifest, expected: Pick<Descriptor, 'digest'> & { size?: number }, imageName: string): void {
  checkManifestSize(fetched.bytes.byteLength, imageName);
  const actual = sha256Digest(fetched.bytes);
  if (actual !== expected.digest || (expected.size !== undefined && expected.size !== fetched.bytes.byteLength)) {
    throw new UserError(`manifest ${expected.digest} of image ${imageName} does not match its digest: its content hashes to ${actual}`, {
      hint: 'the image source is damaged or changed while reading; retry, and re-push the image if it persists',
    });
  }
}

/**
 * Steps 2 and 3: the platform manifest and config of the image `source` serves. The config
 * comes from `cache` when it is there.
 */
async function resolveImage(source: ImageSource, options: FetchOptions, cache?: BlobCache): Promise<ImageMetadata & { trust: TrustVerdict | null }> {
  const reference = source.reference;
  const imageName = formatReference(reference);
  const wanted = options.platform ?? hostPlatform();

  const top = await source.getManifest();
  verifyManifestBytes(top, { digest: reference.digest ?? top.digest }, imageName);
  // The policy judges the manifest the reference names (an index, for a multi-platform
  // image), as upstream's image proxy does; the platform manifest is bound to it by digest.
  const trust = options.trust ? await options.trust.check(source, top, options.signal) : null;
  checkSignal(options.signal);
  let doc = parseManifestDocument(top.bytes, top.mediaType, imageName);
  let fetched = top;
  let manifestDescriptor: Descriptor = { mediaType: '', digest: top.digest, size: top.bytes.byteLength };
  if (doc.kind === 'index') {
    const chosen = selectPlatformManifest(doc.index, wanted, imageName);
    checkSignal(options.signal);
    fetched = await source.getManifest(chosen.digest);
    verifyManifestBytes(fetched, chosen, imageName);
    doc = parseManifestDocument(fetched.bytes, fetched.mediaType || chosen.mediaType, imageName);
    if (doc.kind !== 'manifest') {
      throw new UserError(`image ${imageName} nests an index inside its index`, { hint: 'nested indexes are not supported; point the reference at a platform manifest' });
    }
    const { annotations: _indexAnnotations, ...chosenWithoutAnnotations } = chosen;
    manifestDescriptor = chosenWithoutAnnotations;
  }
  const manifest = doc.manifest;
  manifestDescriptor.mediaType = manifest.mediaType;

  checkSignal(options.signal);
  const configDescriptor = manifest.config;
  let configBytes: Uint8Array | undefined = await cache?.readBlob(configDescriptor);
  const configFetched = configBytes === undefined;
  if (configBytes === undefined) {
    if (configDescriptor.size > MAX_CONFIG_BYTES) {
      throw new UserError(`the config of image ${imageName} is ${configDescriptor.size} bytes, more than the ${MAX_CONFIG_BYTES}-byte limit`, {
        hint: 'a real image config is a few KiB; the image is damaged or hostile',
      });
    }
    const stream = await source.getBlob(configDescriptor, options.signal ? { signal: options.signal } : {});
    configBytes = await readLimited(stream, MAX_CONFIG_BYTES, `the config of image ${imageName}`);
    const actual = sha256Digest(configBytes);
    if (actual !== configDescriptor.digest || configBytes.byteLength !== configDescriptor.size) {
      throw new UserError(`config ${configDescriptor.digest} of image ${imageName} does not match its digest: its content hashes to ${actual}`, {
        hint: 'the image source is damaged or changed while reading; retry, and re-push the image if it persists',
      });
    }
  }
  const config = parseImageConfig(configBytes, manifest, imageName);
  checkConfigPlatform(config, wanted, imageName);
  return {
    reference,
    manifestDigest: fetched.digest,
    manifestDescriptor,
    manifest,
    manifestBytes: fetched.bytes,
    config,
    configDigest: configDescriptor.digest,
    configBytes,
    configFetched,
    layers: manifest.layers.map((descriptor, i) => ({ descriptor, diffId: config.diffIds[i]! })),
    trust,
  };
}

/** Manifest and config only (kilobytes), e.g. for `bootc upgrade --check` and `image inspect`. */
export async function fetchManifestAndConfig(reference: ImageReference, options: FetchOptions = {}): Promise<ImageMetadata> {
  const imageName = formatReference(reference);
  return withContext(`Fetching the manifest of ${imageName}`, async () => {
    const source = await openImageSource(reference, options.signal ? { signal: options.signal } : {});
    try {
      return await resolveImage(source, options);
    } finally {
      await source.close();
    }
  });
}

// layer.js pulls in the exec wrapper (zstd) and its dependencies: loaded only when a pull
// checks diff-ids, which keeps start-up of a plain pull short.
type LayerDecompressor = typeof import('./layer.js').decompressLayer;

/** A tap that unpacks a layer as it downloads and fails if it does not hash to its diff-id. */
function diffIdTap(layer: PulledLayer, imageName: string, decompressLayer: LayerDecompressor): BlobTap {
  const input = new PassThrough({ highWaterMark: 1 << 20 });
  const output = decompressLayer(input, layer.descriptor, layer.diffId, imageName);
  let failed = false;
  const drained = (async () => {
    for await (const _chunk of output) {
      // Only the diff-id check matters.
    }
  })();
  drained.catch(() => {
    failed = true;
  });
  return {
    // A failure is reported by finish(), after the blob's own digest check: bytes that do
    // not match their digest are the better explanation of a broken layer.
    async write(chunk) {
      if (failed) return;
      if (!input.write(chunk)) await Promise.race([once(input, 'drain'), drained.catch(() => undefined)]);
    },
    async finish() {
      input.end();
      await drained;
    },
    abort() {
      output.destroy();
      input.destroy();
    },
  };
}

/** One tap that feeds several. */
function teeTaps(taps: BlobTap[]): BlobTap {
  if (taps.length === 1) return taps[0]!;
  return {
    async write(chunk) {
      await Promise.all(taps.map((t) => t.write(chunk)));
    },
    async finish() {
      await Promise.all(taps.map((t) => t.finish()));
    },
    abort() {
      for (const t of taps) t.abort();
    },
  };
}

/** Upstream's `pulling` task: one `layer` subtask per layer, cached bytes counted apart. */
class PullProgress {
  private readonly subtasks: BytesSubtask[];
  private readonly lastEmitted: number[];
  constructor(
    private readonly progress: Progress,
    private readonly manifestDigest: string,
    layers: PulledLayer[],
  ) {
    this.subtasks = layers.map((l) => ({
      subtask: 'layer',
      description: `Layer ${l.descriptor.digest}`,
      id: shortLayerId(l.descriptor.digest),
      bytesCached: 0,
      bytes: 0,
      bytesTotal: l.descriptor.size,
    }));
    this.lastEmitted = layers.map(() => -1);
  }

  cached(i: number): void {
    const s = this.subtasks[i]!;
    s.bytesCached = s.bytesTotal;
    s.bytes = s.bytesTotal;
  }

  bytes(i: number, done: number): void {
    const s = this.subtasks[i]!;
    s.bytes = done;
    // Building an event per network chunk is wasted work; sinks rate-limit further anyway.
    if (done === s.bytesTotal || done - this.lastEmitted[i]! >= 1 << 20) {
      this.lastEmitted[i] = done;
      this.emit();
    }
  }

  emit(): void {
    const sum = (f: (s: BytesSubtask) => number): number => this.subtasks.reduce((n, s) => n + f(s), 0);
    this.progress.emit({
      type: 'ProgressBytes',
      task: 'pulling',
      description: `Pulling Image: ${this.manifestDigest}`,
      id: this.manifestDigest,
      bytesCached: sum((s) => s.bytesCached),
      bytes: sum((s) => s.bytes),
      bytesTotal: sum((s) => s.bytesTotal),
      stepsCached: this.subtasks.filter((s) => s.bytesCached === s.bytesTotal && s.bytesTotal > 0).length,
      steps: this.subtasks.filter((s) => s.bytes === s.bytesTotal).length,
      stepsTotal: this.subtasks.length,
      subtasks: this.subtasks.map((s) => ({ ...s })),
    });
  }
}

/** Run `work` over `items`, `limit` at a time; the first failure stops the rest and is thrown. */
async function forEachBounded<T>(items: T[], limit: number, outer: AbortSignal | undefined, work: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  const stop = (): void => controller.abort(outer?.reason ?? 'SIGINT');
  outer?.addEventListener('abort', stop, { once: true });
  let next = 0;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && !controller.signal.aborted) {
      const item = items[next++]!;
      try {
        await work(item, controller.signal);
      } catch (err) {
        if (firstError === undefined) firstError = err;
        controller.abort('failed');
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    outer?.removeEventListener('abort', stop);
  }
  if (outer?.aborted) throw new InterruptedError(String(outer.reason ?? 'SIGINT'));
  if (firstError !== undefined) throw firstError;
}

/**
 * The `org.opencontainers.image.ref.name` the cache's index.json records a pull under:
 * `quay.io/example/os:latest` for registries; for local transports the transport and path
 * squeezed into the annotation's grammar (`oci/srv/layout:v2`), so `skopeo inspect
 * oci:CACHE:NAME` accepts it.
 */
export function cacheRefName(reference: ImageReference): string {
  if (reference.transport === 'registry') {
    return reference.digest !== undefined ? `${reference.name}@${reference.digest}` : `${reference.name}:${reference.tag ?? 'latest'}`;
  }
  const component = (text: string): string =>
    text
      .replace(/[^A-Za-z0-9._:@+-]+/g, '-')
      .replace(/[-._:@+]{2,}/g, (run) => (run === '--' ? run : run[0]!))
      .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  const path = [reference.transport, ...reference.name.split('/')].map(component).filter((c) => c !== '');
  const suffix = reference.tag !== undefined ? `:${component(reference.tag)}` : reference.digest !== undefined ? `@${reference.digest}` : '';
  return path.join('/') + suffix;
}

export async function pullImage(reference: ImageReference, options: PullOptions): Promise<PulledImage> {
  const imageName = formatReference(reference);
  const progress = options.progress ?? Progress.silent();
  const signal = options.signal;
  // Independent start-up steps overlap: a pull is short enough that their latencies show.
  const trust = options.trust ?? (await withContext('Reading the signature policy', () => ImageTrust.load()));
  // Refused by --enforce-container-sigpolicy or a `reject` scope before any network or
  // export; what checking the signatures needs loads while the manifest downloads.
  trust.warmUp(await trust.precheck(reference), reference);
  const opening = withContext(`Opening ${imageName}`, () => openImageSource(reference, signal ? { signal } : {}));
  const [cache, source] = await Promise.all([
    withContext(`Opening the image cache ${options.cacheDir}`, () => BlobCache.open(options.cacheDir)).catch(async (err: unknown) => {
      await opening.then((s) => s.close()).catch(() => undefined);
      throw err;
    }),
    opening,
  ]);
  try {
    const image = await withContext(`Fetching the manifest of ${imageName}`, () => resolveImage(source, { ...options, trust }, cache));
    checkSignal(signal);
    const storingConfig = cache.storeBytes({ digest: image.configDigest, size: image.configBytes.byteLength }, image.configBytes, imageName);
    storingConfig.catch(() => undefined);

    const tracker = new PullProgress(progress, image.manifestDigest, image.layers);
    const alreadyHave = options.alreadyHave;
    const inCache = await Promise.all(image.layers.map((layer) => cache.hasBlob(layer.descriptor)));
    const present = await Promise.all(image.layers.map(async (layer, i) => inCache[i]! || (alreadyHave !== undefined && (await alreadyHave(layer)))));
    const layers = [...image.layers];
    const missing: number[] = [];
    for (const [i, has] of present.entries()) {
      const layer = layers[i]!;
      const inPlace = has || !options.layersInPlace ? undefined : await source.blobInPlace?.(layer.descriptor);
      if (has) tracker.cached(i);
      else if (inPlace !== undefined && inPlace.end - inPlace.start + 1 === layer.descriptor.size) {
        layers[i] = { ...layer, inPlace };
        tracker.bytes(i, layer.descriptor.size);
      } else missing.push(i);
    }
    tracker.emit();
    let bytesFetched = image.configFetched ? image.configBytes.byteLength : 0;
    const decompressLayer = (options.verifyDiffIds ?? false) ? (await import('./layer.js')).decompressLayer : undefined;
    await withContext(`Fetching the layers of ${imageName}`, () =>
      forEachBounded(missing, options.concurrency ?? 4, signal, async (i, layerSignal) => {
        const layer = layers[i]!;
        // The first report is where a resumed partial starts: those bytes came earlier.
        let seen: number | undefined;
        await cache.fetchBlob(source, layer.descriptor, {
          imageName,
          signal: layerSignal,
          onBytes: (n) => {
            bytesFetched += seen === undefined ? 0 : Math.max(0, n - seen);
            seen = n;
            tracker.bytes(i, n);
          },
          ...(decompressLayer || options.layerTap
            ? {
                openTap: () =>
                  teeTaps([
                    ...(decompressLayer ? [diffIdTap(layer, imageName, decompressLayer)] : []),
                    ...(options.layerTap ? [options.layerTap(layer, i)] : []),
                  ]),
              }
            : {}),
        });
        tracker.bytes(i, layer.descriptor.size);
      }),
    );

    await storingConfig;
    await cache.storeBytes(image.manifestDescriptor, image.manifestBytes, imageName);
    // Recorded only when the cache holds every blob: not with layers left in place, or
    // skipped because the caller has them (an update's, build-disk's imported layers).
    if (inCache.every((has, i) => has || missing.includes(i))) await cache.recordImage(cacheRefName(reference), image.manifestDescriptor);
    return {
      reference,
      manifestDigest: image.manifestDigest,
      manifest: image.manifest,
      config: image.config,
      configDigest: image.configDigest,
      layers,
      cacheDir: options.cacheDir,
      bytesFetched,
      trust: image.trust!,
    };
  } finally {
    await source.close();
  }
}
