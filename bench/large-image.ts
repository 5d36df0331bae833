/**
 * bench/large-image: an image the size of a real bootc image, for the benchmarks. On top of
 * a fixture (v2 by default: kernel, systemd, the tool layer) come N generated layers of
 * mixed content, as real images have:
 *   - many small text files (1–16 KiB: configuration, scripts, package metadata),
 *   - a few large incompressible binaries (4–48 MiB),
 *   - compressible text (100 KiB–2 MiB: logs, documentation, locale data),
 *   - in every layer after the first, an overwrite of a file an earlier layer wrote and a
 *     whiteout of another, so the import's layering work is exercised too.
 * Layer sizes vary (a few large, many small), the way package-per-layer images do. Content
 * comes from AES-CTR keystreams keyed by the layer number, so the same options always give
 * the same bytes, digests and image: the result is cached under
 * /var/cache/bootc-ts/bench/ by a key of the options and the base image's digest.
 *
 * Writes an OCI image layout (tag `large`) and an oci-archive of it; prints JSON with both
 * references, the layer count and the compressed and uncompressed sizes.
 *
 * `--variant N` (N > 0) gives the same image with its last generated layer made from
 * another seed (same size and shape, other bytes and digest): a one-layer change, for
 * bench/rebuild.ts. Variant 0 is the image itself.
 *
 *   npx tsx bench/large-image.ts [--layers 60] [--gib 2] [--base v2] [--variant 0]   (as root: reads the fixtures)
 *
 * Other benches take `--image large` and call largeImage() themselves.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { copyFile, link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { run } from '../src/core/exec.js';
import { ociLayoutDir, type FixtureTag } from '../fixtures/paths.js';

/** Bumped whenever what is generated changes, so old caches are not taken for new ones. */
const GENERATOR_VERSION = 1;
export const LARGE_IMAGE_CACHE = process.env['BOOTC_BENCH_CACHE'] ?? '/var/cache/bootc-ts/bench';

export interface LargeImageOptions {
  layers: number;
  /** Uncompressed bytes the generated layers add up to (the base image comes on top). */
  bytes: number;
  base: FixtureTag;
  /** 0: the image; N > 0: its last generated layer from seed variant N (a one-layer change). */
  variant?: number;
}

export interface LargeImage {
  layoutDir: string;
  /** `oci:<layout>:large` */
  layoutRef: string;
  archivePath: string;
  /** `oci-archive:<archive>:large` */
  archiveRef: string;
  layers: number;
  generatedLayers: number;
  variant: number;
  /** Every layer's blob, the base's included. */
  compressedBytes: number;
  /** The generated layers' tar streams (the base's are not recorded in its manifest). */
  generatedUncompressedBytes: number;
  manifestDigest: string;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

const MiB = 1024 ** 2;
const WORDS = (
  'system service unit kernel module firmware package library binary config network device boot image layer ' +
  'container update rollback deployment target mount socket timer journal storage volume partition security policy ' +
  'signature digest manifest registry commit object tree file directory symlink hardlink owner group mode label'
).split(' ');

/** A deterministic byte source: AES-128-CTR over zeros, keyed by `seed`. */
class Keystream {
  private readonly cipher;
  constructor(seed: string) {
    const key = createHash('sha256').update(seed).digest();
    this.cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  }
  bytes(n: number): Buffer {
    return this.cipher.update(Buffer.alloc(n));
  }
  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + (this.bytes(4).readUInt32LE(0) % (hi - lo + 1));
  }
  /** Text of about `n` bytes made of words and line breaks: compresses as text does. */
  text(n: number): Buffer {
    const random = this.bytes(Math.ceil(n / 4) + 1);
    const parts: string[] = [];
    let length = 0;
    for (let i = 0; length < n; i++) {
      const word = WORDS[random[i % random.length]! % WORDS.length]!;
      const sep = random[(i * 7) % random.length]! % 11 === 0 ? '\n' : ' ';
      parts.push(word, sep);
      length += word.length + 1;
    }
    return Buffer.from(parts.join('')).subarray(0, n);
  }
}

interface FileSpec {
  path: string;
  content: Buffer;
}

/** The files of generated layer `index` (1-based), about `bytes` in all; `variant` > 0 reseeds it. */
function* layerFiles(index: number, bytes: number, variant: number): Generator<FileSpec> {
  const ks = new Keystream(`bootc-bench-large-image/${GENERATOR_VERSION}/layer/${index}${variant > 0 ? `/variant/${variant}` : ''}`);
  const dir = `usr/share/bench/layer-${String(index).padStart(3, '0')}`;
  // Roughly 40 % small files, 30 % binaries, 30 % compressible text; what is left is text.
  let left = bytes;
  let small = Math.floor(bytes * 0.4);
  for (let i = 0; small > 0; i++) {
    const n = Math.min(small, ks.between(1024, 16 * 1024));
    yield { path: `${dir}/etc/conf-${i}.txt`, content: ks.text(n) };
    small -= n;
    left -= n;
  }
  let binary = Math.floor(bytes * 0.3);
  for (let i = 0; binary > 0; i++) {
    const n = Math.min(binary, ks.between(4 * MiB, 48 * MiB));
    yield { path: `${dir}/bin/blob-${i}.bin`, content: ks.bytes(n) };
    binary -= n;
    left -= n;
  }
  for (let i = 0; left > 0; i++) {
    const n = Math.min(left, ks.between(100 * 1024, 2 * MiB));
    yield { path: `${dir}/doc/text-${i}.log`, content: ks.text(n) };
    left -= n;
  }
  // The same path in every layer: later layers overwrite it.
  yield { path: 'usr/share/bench/last-layer', content: Buffer.from(variant > 0 ? `${index} variant ${variant}\n` : `${index}\n`) };
}

/** How the total is shared out: a few large layers, many small ones, deterministic. */
function layerSizes(layers: number, total: number): number[] {
  const ks = new Keystream(`bootc-bench-large-image/${GENERATOR_VERSION}/sizes/${layers}/${total}`);
  const weights = Array.from({ length: layers }, (_, i) => (i % 10 === 0 ? 12 : 1) * ks.between(50, 150));
  const sum = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => Math.max(64 * 1024, Math.floor((total * w) / sum)));
}

/** Streams `entries` as a gzip-compressed tar into `file`; returns both digests and the size. */
async function writeLayer(file: string, index: number, bytes: number, variant: number): Promise<{ digest: string; diffId: string; size: number; uncompressed: number }> {
  const pack = tar.pack();
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  let uncompressed = 0;
  let size = 0;
  const out = createWriteStream(file);
  const counting = new Writable({
    write(chunk: Buffer, _enc, done) {
      blob.update(chunk);
      size += chunk.length;
      out.write(chunk) ? done() : out.once('drain', done);
    },
    final(done) {
      out.end(done);
    },
  });
  const gzip = createGzip({ level: 6 });
  // Observes the tar as it flows into gzip (pipe and this listener both see every chunk).
  pack.on('data', (chunk: unknown) => {
    diff.update(chunk as Buffer);
    uncompressed += (chunk as Buffer).length;
  });
  const writing = pipeline(pack, gzip, counting);
  const mtime = new Date('2026-01-01T00:00:00Z');
  const dirs = new Set<string>();
  const entry = (header: Pick<tar.Header, 'name' | 'type' | 'mode' | 'mtime'> & { size?: number }, content: Buffer = Buffer.alloc(0)): Promise<void> =>
    new Promise((resolve, reject) =>
      pack.entry({ uid: 0, gid: 0, uname: 'root', gname: 'root', linkname: '', devmajor: 0, devminor: 0, size: 0, ...header }, content, (err) => (err ? reject(err) : resolve())),
    );
  for (const f of layerFiles(index, bytes, variant)) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) {
        dirs.add(d);
        await entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime });
      }
    }
    await entry({ name: f.path, type: 'file', mode: f.path.includes('/bin/') ? 0o755 : 0o644, mtime, size: f.content.length }, f.content);
  }
  if (index > 1) {
    // Delete a file the previous layer wrote, as a package removal would.
    const previous = `usr/share/bench/layer-${String(index - 1).padStart(3, '0')}/etc`;
    await entry({ name: `${previous}/.wh.conf-0.txt`, type: 'file', mode: 0o644, mtime, size: 0 }, Buffer.alloc(0));
  }
  pack.finalize();
  await writing;
  return { digest: `sha256:${blob.digest('hex')}`, diffId: `sha256:${diff.digest('hex')}`, size, uncompressed };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function writeBlob(layout: string, bytes: Buffer): Promise<Descriptor> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(layout, digest), bytes);
  return { mediaType: '', digest, size: bytes.length };
}

/** The cached image for `options`, generated first when it is not there. */
export async function largeImage(options: LargeImageOptions): Promise<LargeImage> {
  const baseIndex = JSON.parse(await readFile(join(ociLayoutDir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const baseDescriptor = baseIndex.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === options.base);
  if (!baseDescriptor) throw new Error(`no fixture:${options.base} in ${ociLayoutDir}: build the fixtures with \`make fixtures\``);
  const variant = options.variant ?? 0;
  // Variant 0 keeps the key it had before variants existed, so cached images stay valid.
  const key = createHash('sha256')
    .update(JSON.stringify({ v: GENERATOR_VERSION, layers: options.layers, bytes: options.bytes, base: baseDescriptor.digest, ...(variant > 0 ? { variant } : {}) }))
    .digest('hex')
    .slice(0, 16);
  const dir = join(LARGE_IMAGE_CACHE, `large-${key}`);
  const resultFile = join(dir, 'image.json');
  if (existsSync(resultFile)) return { variant: 0, ...(JSON.parse(await readFile(resultFile, 'utf8')) as Omit<LargeImage, 'variant'>) };

  const tmp = join(LARGE_IMAGE_CACHE, `.tmp-large-${key}`);
  await rm(tmp, { recursive: true, force: true });
  const layout = join(tmp, 'oci');
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  const baseManifest = JSON.parse(await readFile(blobPath(ociLayoutDir, baseDescriptor.digest), 'utf8')) as { config: Descriptor; layers: Descriptor[]; mediaType?: string; schemaVersion: number };
  const baseConfig = JSON.parse(await readFile(blobPath(ociLayoutDir, baseManifest.config.digest), 'utf8')) as {
    rootfs: { type: string; diff_ids: string[] };
    history?: Array<Record<string, unknown>>;
  };
  // The base layers, shared with the fixture layout by hard links.
  for (const l of baseManifest.layers) {
    await link(blobPath(ociLayoutDir, l.digest), blobPath(layout, l.digest)).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EXDEV') throw err;
      await copyFile(blobPath(ociLayoutDir, l.digest), blobPath(layout, l.digest));
    });
  }

  const layers: Descriptor[] = [...baseManifest.layers];
  const diffIds = [...baseConfig.rootfs.diff_ids];
  const history = [...(baseConfig.history ?? [])];
  let uncompressed = 0;
  const sizes = layerSizes(options.layers, options.bytes);
  for (let i = 0; i < sizes.length; i++) {
    const partial = join(layout, `layer-${i}.partial`);
    const written = await writeLayer(partial, i + 1, sizes[i]!, i === sizes.length - 1 ? variant : 0);
    await rename(partial, blobPath(layout, written.digest));
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: written.digest, size: written.size });
    diffIds.push(written.diffId);
    history.push({ created: '2026-01-01T00:00:00Z', created_by: `bench/large-image.ts layer ${i + 1}` });
    uncompressed += written.uncompressed;
    process.stderr.write(`large-image: layer ${i + 1}/${sizes.length}: ${(written.size / MiB).toFixed(1)} MiB compressed\n`);
  }
  const config = await writeBlob(layout, Buffer.from(JSON.stringify({ ...baseConfig, rootfs: { type: 'layers', diff_ids: diffIds }, history })));
  config.mediaType = 'application/vnd.oci.image.config.v1+json';
  const manifestDescriptor = await writeBlob(
    layout,
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers })),
  );
  manifestDescriptor.mediaType = 'application/vnd.oci.image.manifest.v1+json';
  manifestDescriptor.annotations = { 'org.opencontainers.image.ref.name': 'large' };
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [manifestDescriptor] }));
  // An oci-archive is the layout as a tar.
  const archive = join(tmp, 'large.tar');
  await run({ description: 'Writing the oci-archive of the large image', argv: ['tar', '-C', layout, '-cf', archive, '.'] });

  const compressedBytes = layers.reduce((a, l) => a + l.size, 0);
  const result: LargeImage = {
    layoutDir: join(dir, 'oci'),
    layoutRef: `oci:${join(dir, 'oci')}:large`,
    archivePath: join(dir, 'large.tar'),
    archiveRef: `oci-archive:${join(dir, 'large.tar')}:large`,
    layers: layers.length,
    generatedLayers: options.layers,
    variant,
    compressedBytes,
    generatedUncompressedBytes: uncompressed,
    manifestDigest: manifestDescriptor.digest,
  };
  if ((await sha256File(blobPath(layout, manifestDescriptor.digest))) !== manifestDescriptor.digest) throw new Error('the manifest blob does not match its digest');
  await writeFile(join(tmp, 'image.json'), JSON.stringify(result, null, 2) + '\n');
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return result;
}

/** `--layers N --gib G --base TAG --variant V` from argv, with the issue's defaults (60 layers, 2 GiB, variant 0). */
export function largeImageOptions(argv: readonly string[]): LargeImageOptions {
  const value = (flag: string): string | undefined => {
    const at = argv.indexOf(flag);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  return {
    layers: Number(value('--layers') ?? 60),
    bytes: Math.round(Number(value('--gib') ?? 2) * 1024 ** 3),
    base: (value('--base') ?? 'v2') as FixtureTag,
    variant: Number(value('--variant') ?? 0),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const started = Date.now();
  const image = await largeImage(largeImageOptions(process.argv.slice(2)));
  const archive = await stat(image.archivePath);
  process.stdout.write(JSON.stringify({ ...image, archiveBytes: archive.size, seconds: (Date.now() - started) / 1000 }, null, 2) + '\n');
}
