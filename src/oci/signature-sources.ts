/**
 * Fetching the signatures of one manifest from where containers/image keeps them:
 *
 * - lookaside storage (GPG simple signing): `<lookaside>/<repo>@sha256=<hex>/signature-N`,
 *   N = 1, 2, … until the first one that does not exist; over http(s) or from a file: URL;
 * - sigstore attachments: the OCI manifest tagged `sha256-<hex>.sig` in the image's own
 *   repository, one layer per signature (payload blob + signature annotation).
 *
 * Only bytes are fetched here; nothing is trusted until image-trust.ts has checked them.
 */
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { UserError } from '../core/errors.js';
import { sha256Digest } from './digest.js';
import type { DockerReference } from './reference.js';
import type { ImageSource } from './types.js';

export function lookasideBase(url: string, where: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError(`${where}: lookaside ${JSON.stringify(url)} is not a URL`, { hint: 'write http://, https:// or file:// URLs' });
  }
  if (!['http:', 'https:', 'file:'].includes(parsed.protocol)) {
    throw new UserError(`${where}: lookaside ${url} uses ${parsed.protocol}, which is not supported`, { hint: 'write http://, https:// or file:// URLs' });
  }
  return parsed;
}

/** `<lookaside>/<repository path>@sha256=<hex>/signature-<n>` (n from 1). */
export function lookasideSignatureUrl(lookaside: string, ref: DockerReference, manifestDigest: string, n: number): URL {
  const base = lookasideBase(lookaside, 'registries.d');
  const repository = ref.name.slice(ref.name.indexOf('/') + 1);
  const [algorithm, hex] = manifestDigest.split(':') as [string, string];
  if (!/^[a-z0-9]+$/.test(algorithm) || !/^[a-f0-9]+$/.test(hex ?? '')) throw new Error(`not a digest: ${manifestDigest}`);
  base.pathname = `${base.pathname.replace(/\/$/, '')}/${repository}@${algorithm}=${hex}/signature-${n}`;
  return base;
}
/** containers/image's bound on one signature, and on how many it reads for one image. */
export const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;
export const MAX_SIGNATURES = 128;
const HTTP_TIMEOUT_MS = 30_000;

export const SIGSTORE_SIGNATURE_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGSTORE_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

export interface SigstoreSignature {
  mediaType: string;
  payload: Uint8Array;
  annotations: Record<string, string>;
}

/** GET `url`: the body, or null on 404; bounded; redirects followed a few times. */
async function httpGet(url: URL, signal: AbortSignal | undefined, redirects = 3): Promise<Uint8Array | null> {
  const module = url.protocol === 'https:' ? https : http;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = module.get(url, { timeout: HTTP_TIMEOUT_MS, ...(signal ? { signal } : {}) }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} in ${HTTP_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
  });
  const status = res.statusCode ?? 0;
  if ([301, 302, 303, 307, 308].includes(status) && res.headers.location && redirects > 0) {
    res.resume();
    return httpGet(new URL(res.headers.location, url), signal, redirects - 1);
  }
  if (status === 404) {
    res.resume();
    return null;
  }
  if (status !== 200) {
    res.resume();
    throw new UserError(`the signature server answered HTTP ${status} for ${url.href}`, { hint: 'check the lookaside URL in registries.d and that the server is up' });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).length;
    if (total > MAX_SIGNATURE_BYTES) {
      res.destroy();
      throw new UserError(`the signature at ${url.href} is larger than ${MAX_SIGNATURE_BYTES} bytes`, { hint: 'a signature is a few hundred bytes; the lookaside storage is damaged or hostile' });
    }
    chunks.push(chunk as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

async function readSignatureFile(url: URL): Promise<Uint8Array | null> {
  try {
    const bytes = await readFile(fileURLToPath(url));
    if (bytes.byteLength > MAX_SIGNATURE_BYTES) throw new UserError(`the signature ${url.pathname} is larger than ${MAX_SIGNATURE_BYTES} bytes`, { hint: 'the lookaside storage is damaged or hostile' });
    return new Uint8Array(bytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

export interface LookasideSignatures {
  signatures: Uint8Array[];
  /** The first URL looked at, for "no signature found" messages. */
  firstUrl: string;
}

/** The lookaside signatures of `manifestDigest`, in order. */
export async function fetchLookasideSignatures(lookaside: string, ref: DockerReference, manifestDigest: string, signal?: AbortSignal): Promise<LookasideSignatures> {
  const signatures: Uint8Array[] = [];
  const firstUrl = lookasideSignatureUrl(lookaside, ref, manifestDigest, 1).href;
  for (let n = 1; n <= MAX_SIGNATURES; n++) {
    const url = lookasideSignatureUrl(lookaside, ref, manifestDigest, n);
    let bytes: Uint8Array | null;
    try {
      bytes = url.protocol === 'file:' ? await readSignatureFile(url) : await httpGet(url, signal);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`cannot read signature ${url.href}: ${(err as Error).message}`, { hint: 'check the lookaside URL in registries.d and that the server is reachable', cause: err });
    }
    if (bytes === null) break;
    signatures.push(bytes);
  }
  return { signatures, firstUrl };
}

/** The tag cosign and containers/image store a manifest's signatures under. */
export function sigstoreAttachmentTag(manifestDigest: string): string {
  return `${manifestDigest.replace(':', '-')}.sig`;
}

async function readBlob(source: ImageSource, descriptor: { mediaType: string; digest: string; size: number }, signal?: AbortSignal): Promise<Uint8Array> {
  if (descriptor.size > MAX_SIGNATURE_BYTES) throw new Error(`a signature payload of ${descriptor.size} bytes is over the ${MAX_SIGNATURE_BYTES}-byte limit`);
  const stream = await source.getBlob(descriptor, signal ? { signal } : {});
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > descriptor.size) {
      (stream as { destroy?: () => void }).destroy?.();
      break;
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(Buffer.concat(chunks));
  if (bytes.byteLength !== descriptor.size || sha256Digest(bytes) !== descriptor.digest) throw new Error(`signature payload ${descriptor.digest} does not match its digest`);
  return bytes;
}

/** The sigstore signatures attached to `manifestDigest`, or [] when there are none. */
export async function fetchSigstoreAttachments(source: ImageSource, manifestDigest: string, signal?: AbortSignal): Promise<SigstoreSignature[]> {
  if (!source.getTaggedManifest) return [];
  const tag = sigstoreAttachmentTag(manifestDigest);
  const bytes = await source.getTaggedManifest(tag, signal ? { signal } : {});
  if (bytes === null) return [];
  let layers: unknown;
  try {
    layers = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { layers?: unknown }).layers;
  } catch (err) {
    throw new UserError(`the sigstore signature manifest ${tag} is not valid JSON: ${(err as Error).message}`, { hint: 'the signatures in the registry are damaged; sign the image again' });
  }
  if (!Array.isArray(layers)) throw new UserError(`the sigstore signature manifest ${tag} has no layers`, { hint: 'the signatures in the registry are damaged; sign the image again' });
  const out: SigstoreSignature[] = [];
  for (const layer of layers.slice(0, MAX_SIGNATURES)) {
    const l = layer as { mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: unknown };
    if (typeof l.mediaType !== 'string' || typeof l.digest !== 'string' || typeof l.size !== 'number') continue;
    const annotations = typeof l.annotations === 'object' && l.annotations !== null ? (l.annotations as Record<string, string>) : {};
    const payload = await readBlob(source, { mediaType: l.mediaType, digest: l.digest, size: l.size }, signal);
    out.push({ mediaType: l.mediaType, payload, annotations });
  }
  return out;
}
