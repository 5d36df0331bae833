/**
 * Signing images for trust tests, the way a fleet's CI would: a GPG key made in a temporary
 * GNUPGHOME for `skopeo copy --sign-by`, and a sigstore key pair with attachments made as
 * `skopeo copy --sign-by-sigstore-private-key` makes them, plus a tiny static HTTP server for a
 * lookaside storage directory. All on 127.0.0.1, all in temporary directories.
 *
 * Sigstore signatures are written here in the format cosign and containers/image use:
 * Debian 12's skopeo 1.9.3 has sigstore signing disabled and no `generate-sigstore-key`.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join, normalize } from 'node:path';
import { run } from '../../src/core/exec.js';
import { tempDir } from './temp-tree.js';

export interface GpgSigner {
  home: string;
  fingerprint: string;
  /** The public key, binary (`gpg --export`). */
  publicKeyPath: string;
  /** The same, ASCII-armored. */
  publicKeyArmoredPath: string;
  env: Record<string, string>;
  dispose(): Promise<void>;
}

/** A fresh GPG key (no passphrase) in its own GNUPGHOME. */
export async function makeGpgSigner(name: string): Promise<GpgSigner> {
  const scratch = tempDir('gpg');
  const home = scratch.path;
  const env = { GNUPGHOME: home };
  await run({
    description: `Generating the test GPG key ${name}`,
    argv: ['gpg', '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', `${name} <${name}@example.test>`, 'default', 'default', 'never'],
    env,
  });
  const listing = await run({ description: 'Listing the test GPG key', argv: ['gpg', '--batch', '--with-colons', '--list-keys'], env });
  const fingerprint = listing.stdout.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
  const publicKeyPath = join(home, `${name}.gpg`);
  const publicKeyArmoredPath = join(home, `${name}.asc`);
  await run({ description: 'Exporting the test GPG key', argv: ['gpg', '--batch', '--output', publicKeyPath, '--export', fingerprint], env });
  await run({ description: 'Exporting the test GPG key (armored)', argv: ['gpg', '--batch', '--armor', '--output', publicKeyArmoredPath, '--export', fingerprint], env });
  return {
    home,
    fingerprint,
    publicKeyPath,
    publicKeyArmoredPath,
    env,
    dispose: async () => {
      await run({ description: 'Stopping the test gpg-agent', argv: ['gpgconf', '--kill', 'gpg-agent'], env }).catch(() => undefined);
      scratch.remove();
    },
  };
}

export interface SigstoreKeyPair {
  privateKey: KeyObject;
  publicKeyPath: string;
}

/** An ECDSA P-256 key pair, as `skopeo generate-sigstore-key` / `cosign generate-key-pair` make. */
export async function makeSigstoreKeyPair(dir: string, name: string): Promise<SigstoreKeyPair> {
  await mkdir(dir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKeyPath = join(dir, `${name}.pub`);
  await writeFile(publicKeyPath, publicKey.export({ format: 'pem', type: 'spki' }));
  return { privateKey, publicKeyPath };
}

const SIGSTORE_LAYER_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
const sha256 = (bytes: Uint8Array | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function registryRequest(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function uploadBlob(port: number, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await registryRequest(port, 'POST', `/v2/${repo}/blobs/uploads/`, {});
  if (start.status !== 202) throw new Error(`starting a blob upload to ${repo}: HTTP ${start.status}`);
  const location = new URL(String(start.headers.location), `http://127.0.0.1:${port}`);
  location.searchParams.set('digest', digest);
  const put = await registryRequest(port, 'PUT', location.pathname + location.search, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) }, bytes);
  if (put.status !== 201) throw new Error(`uploading blob ${digest} to ${repo}: HTTP ${put.status}`);
  return digest;
}

/** Store a manifest under `reference` (a tag) in the test registry. */
export async function putManifest(port: number, repo: string, reference: string, manifest: Buffer): Promise<void> {
  const res = await registryRequest(port, 'PUT', `/v2/${repo}/manifests/${reference}`, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, manifest);
  if (res.status !== 201) throw new Error(`putting manifest ${repo}:${reference}: HTTP ${res.status} ${res.body.toString()}`);
}

export async function getManifest(port: number, repo: string, reference: string): Promise<Buffer> {
  const res = await registryRequest(port, 'GET', `/v2/${repo}/manifests/${reference}`, { accept: 'application/vnd.oci.image.manifest.v1+json' });
  if (res.status !== 200) throw new Error(`getting manifest ${repo}:${reference}: HTTP ${res.status}`);
  return res.body;
}

/**
 * Attach a sigstore signature to `manifestDigest` in `repo`, as `skopeo copy
 * --sign-by-sigstore-private-key` and `cosign sign --key` do: the simple-signing payload
 * as a layer of the OCI manifest tagged `sha256-<hex>.sig`, its ECDSA signature (DER,
 * base64) in the layer's `dev.cosignproject.cosign/signature` annotation. Debian 12's
 * skopeo 1.9.3 refuses to make these ("Debian-local change: sigstore disabled").
 */
export async function attachSigstoreSignature(port: number, repo: string, manifestDigest: string, identity: string, key: KeyObject): Promise<void> {
  const payload = Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': identity }, image: { 'docker-manifest-digest': manifestDigest }, type: 'cosign container image signature' },
      optional: null,
    }),
  );
  const signature = sign('sha256', payload, key).toString('base64');
  const payloadDigest = await uploadBlob(port, repo, payload);
  const config = Buffer.from(JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [payloadDigest] } }));
  const configDigest = await uploadBlob(port, repo, config);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: configDigest },
    layers: [{ mediaType: SIGSTORE_LAYER_TYPE, size: payload.length, digest: payloadDigest, annotations: { 'dev.cosignproject.cosign/signature': signature } }],
  };
  await putManifest(port, repo, `${manifestDigest.replace(':', '-')}.sig`, Buffer.from(JSON.stringify(manifest)));
}

export interface StaticServer {
  url: string;
  /** Requests served, for "was the lookaside read" checks. */
  requests: string[];
  stop(): Promise<void>;
}

/** Serve `dir` read-only over HTTP on 127.0.0.1 (a lookaside storage). */
export async function serveDirectory(dir: string): Promise<StaticServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    requests.push(path);
    const file = join(dir, path);
    stat(file).then(
      (s) => {
        if (!s.isFile()) throw new Error('not a file');
        res.writeHead(200, { 'content-length': s.size });
        createReadStream(file).pipe(res);
      },
      () => {
        res.writeHead(404);
        res.end();
      },
    ).catch(() => {
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
