/**
 * A real registry for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 at
 * a free port, with temporary storage and a generated config — plain, with htpasswd basic
 * auth, or with token auth against test/support/token-issuer.ts. Plus helpers to build a
 * tiny OCI image layout and push it with skopeo.
 */
import { createServer } from 'node:net';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { run, spawnStreaming } from '../../src/core/exec.js';
import { needsCommands } from './tier.js';
import { startTokenIssuer, type TokenIssuer } from './token-issuer.js';
import { tempDir } from './temp-tree.js';

/** Why registry tests cannot run here, or null. */
export function needsRegistryTools(): string | null {
  return needsCommands('docker-registry', 'skopeo', 'openssl', 'htpasswd');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; username: string; password: string }
  | { kind: 'token'; username: string; password: string };

export interface TestRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  port: number;
  auth: RegistryAuth;
  tokenIssuer?: TokenIssuer;
  /** skopeo `--dest-creds`/`--src-creds` value, when the registry needs credentials. */
  creds?: string;
  stop(): Promise<void>;
}

async function waitForV2(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await new Promise<number>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
    });
    if (status === 200 || status === 401) return;
    if (Date.now() > deadline) throw new Error(`docker-registry on 127.0.0.1:${port} did not answer /v2/ within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Start docker-registry; always `stop()` it (afterAll). */
export async function startRegistry(auth: RegistryAuth = { kind: 'none' }): Promise<TestRegistry> {
  const scratch = tempDir('registry');
  const dir = scratch.path;
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${createHash('sha256').update(dir).digest('hex')}`,
  ];
  let tokenIssuer: TokenIssuer | undefined;
  if (auth.kind === 'htpasswd') {
    await run({
      description: 'Writing the test htpasswd file',
      argv: ['htpasswd', '-B', '-b', '-c', join(dir, 'htpasswd'), auth.username, auth.password],
    });
    lines.push('auth:', '  htpasswd:', '    realm: bootc-test', `    path: ${join(dir, 'htpasswd')}`);
  } else if (auth.kind === 'token') {
    tokenIssuer = await startTokenIssuer({ dir: join(dir, 'token'), users: { [auth.username]: auth.password } });
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${tokenIssuer.realm}`,
      `    service: ${tokenIssuer.service}`,
      `    issuer: ${tokenIssuer.issuer}`,
      `    rootcertbundle: ${tokenIssuer.certificatePath}`,
    );
  }
  await mkdir(join(dir, 'storage'), { recursive: true });
  await writeFile(join(dir, 'config.yml'), lines.join('\n') + '\n');
  const { child, done } = spawnStreaming({
    description: 'Running the test registry',
    argv: ['docker-registry', 'serve', join(dir, 'config.yml')],
    stdio: { stdin: 'ignore', stdout: 'ignore' },
  });
  done.catch(() => undefined);
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await done.catch(() => undefined);
    await tokenIssuer?.stop();
    scratch.remove();
  };
  try {
    await waitForV2(port, 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const registry: TestRegistry = { host: `127.0.0.1:${port}`, port, auth, stop };
  if (tokenIssuer) registry.tokenIssuer = tokenIssuer;
  if (auth.kind !== 'none') registry.creds = `${auth.username}:${auth.password}`;
  return registry;
}

/** skopeo copy SOURCE into this registry as `name:tag`. */
export async function pushToRegistry(
  registry: TestRegistry,
  source: string,
  target: string,
  extra: { format?: 'oci' | 'v2s2'; all?: boolean } = {},
): Promise<void> {
  const argv = ['skopeo', 'copy', '--quiet', '--dest-tls-verify=false'];
  if (registry.creds) argv.push('--dest-creds', registry.creds);
  if (extra.format) argv.push('--format', extra.format);
  if (extra.all) argv.push('--all');
  argv.push(source, `docker://${registry.host}/${target}`);
  await run({ description: `Pushing ${source} to the test registry`, argv: argv as [string, ...string[]] });
}

// ---- A tiny OCI image layout built by hand ----

const sha256 = (bytes: Uint8Array | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const finished = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const [name, content] of Object.entries(files)) {
    p.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  }
  p.finalize();
  await finished;
  return Buffer.concat(chunks);
}

export interface TinyImage {
  manifestDigest: string;
  manifestBytes: Buffer;
  layerDigest: string;
  layer: Buffer;
  configDigest: string;
  platform: { architecture: string; os: string };
}

export interface TinyLayout {
  dir: string;
  /** Per platform image; the layout's `tag` points at the index when there are several. */
  images: TinyImage[];
  indexDigest?: string;
  tag: string;
}

/**
 * Write an OCI image layout with one gzip layer per platform (`layerBytes` of incompressible
 * data in a file, so resume tests have something to cut). Several platforms make an index.
 */
export async function writeTinyOciLayout(
  dir: string,
  options: { tag?: string; platforms?: string[]; layerBytes?: number; seed?: string } = {},
): Promise<TinyLayout> {
  const tag = options.tag ?? 'latest';
  const platforms = options.platforms ?? ['amd64'];
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const putBlob = async (bytes: Buffer | string): Promise<{ digest: string; size: number }> => {
    const digest = sha256(bytes);
    await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { digest, size: Buffer.byteLength(bytes) };
  };
  const images: TinyImage[] = [];
  for (const architecture of platforms) {
    // Random-looking but reproducible content, so gzip cannot shrink it.
    const size = options.layerBytes ?? 4096;
    const random = Buffer.alloc(size);
    let block = createHash('sha256').update(`${options.seed ?? 'seed'}-${architecture}`).digest();
    for (let off = 0; off < size; off += block.length) {
      block.copy(random, off);
      block = createHash('sha256').update(block).digest();
    }
    const tar = await tarOf({ 'etc/arch': architecture + '\n', 'usr/share/data.bin': random.toString('latin1') });
    const layer = gzipSync(tar);
    const layerBlob = await putBlob(layer);
    const config = JSON.stringify({
      architecture,
      os: 'linux',
      created: '2025-01-01T00:00:00Z',
      config: { Labels: { 'org.opencontainers.image.version': '1.0' } },
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
    });
    const configBlob = await putBlob(config);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layerBlob }],
    });
    const manifestBlob = await putBlob(manifest);
    images.push({
      manifestDigest: manifestBlob.digest,
      manifestBytes: Buffer.from(manifest),
      layerDigest: layerBlob.digest,
      layer,
      configDigest: configBlob.digest,
      platform: { architecture, os: 'linux' },
    });
  }
  const layout: TinyLayout = { dir, images, tag };
  let top: { mediaType: string; digest: string; size: number };
  if (images.length === 1) {
    const only = images[0]!;
    top = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: only.manifestDigest, size: only.manifestBytes.length };
  } else {
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: images.map((img) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: img.manifestDigest,
        size: img.manifestBytes.length,
        platform: img.platform,
      })),
    });
    const indexBlob = await putBlob(index);
    layout.indexDigest = indexBlob.digest;
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', ...indexBlob };
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
  return layout;
}

/** sha256 of everything a stream yields. */
export async function digestOfStream(stream: NodeJS.ReadableStream): Promise<{ digest: string; size: number; bytes: Buffer }> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  const bytes = Buffer.concat(chunks);
  return { digest: sha256(bytes), size: bytes.length, bytes };
}
