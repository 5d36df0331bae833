/**
 * An OCI distribution-spec v2 client: the `registry` transport's ImageSource.
 *
 * 1. Resolve the reference through registries.conf to endpoints (mirrors first).
 * 2. For each request: anonymous first; on 401 answer the `WWW-Authenticate` challenge
 *    (Bearer: a token from the realm, with basic credentials when we have them, cached per
 *    scope; Basic: the credentials themselves) and retry once.
 * 3. Retry 429, 5xx and dropped/refused connections with exponential backoff (bounded);
 *    never other 4xx.
 * 4. Manifests are bounded at 4 MiB and validated; blobs are streamed, resumable with Range.
 *
 * Built on node:http/https rather than the global fetch: we need a custom DNS lookup (tests
 * reach "remote" host names on 127.0.0.1), per-endpoint TLS verification, redirects that
 * drop credentials when they leave the registry, the raw socket error codes (to tell
 * "TLS spoken to plain HTTP" from "connection refused"), and back-pressured body streams,
 * none of which Node 20's bundled undici exposes without the npm package.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterruptedError, UserError } from '../core/errors.js';
import { cancellation } from '../core/cancel.js';
import { debug } from '../core/log.js';
import { toolVersion } from '../core/version.js';
import { sha256Digest } from './digest.js';
import { ACCEPTED_MANIFEST_TYPES, MAX_MANIFEST_BYTES, MediaType, checkManifestSize, parseManifestDocument } from './manifest.js';
import { formatReference } from './reference.js';
import {
  backoffDelayMs,
  chooseChallenge,
  isRetryableNetworkError,
  isRetryableStatus,
  isTlsCertificateError,
  isTlsToPlainHttpError,
  parseWwwAuthenticate,
  pullScope,
  registryErrorSummary,
} from './registry-challenge.js';
import {
  describeTried,
  lookupCredentials,
  type CredentialLookup,
  type CredentialLookupOptions,
} from './credentials.js';
import {
  loadRegistriesConf,
  resolveEndpoints,
  type RegistriesConfig,
  type RegistriesConfPaths,
  type RegistryEndpoint,
} from './registries-conf.js';
import type { BlobFetchOptions, BlobStreamInfo, Descriptor, FetchedManifest, ImageReference, ImageSource } from './types.js';

export interface RetryPolicy {
  /** Tries in all, first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Four tries over about two seconds rides out a registry restart without hanging a CLI. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 8000 };
/** No byte for this long on a connection means it is dead. */
const SOCKET_IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 10;
/** Error bodies are read only this far: enough for the JSON error, not a whole page. */
const ERROR_BODY_LIMIT = 64 * 1024;
/** Token endpoints answer in a few KiB. */
const TOKEN_BODY_LIMIT = 1024 * 1024;
/** Tokens without `expires_in` live 60 s (distribution token spec). */
const DEFAULT_TOKEN_LIFETIME_S = 60;
const TOKEN_EXPIRY_MARGIN_MS = 5_000;

export interface RegistryClientOptions {
  /** Which credential files (user pulls, or the host's pull secret for updates). */
  credentials?: CredentialLookupOptions;
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  /**
   * Connect to these addresses instead of resolving the host names (like curl --resolve);
   * keys are host names without port. Used by tests to reach "remote" names on 127.0.0.1.
   */
  resolve?: Readonly<Record<string, string>>;
}

export interface RegistrySourceOptions extends RegistryClientOptions {
  /** An already loaded registries.conf; otherwise it is read from `registriesConfPaths`. */
  registriesConf?: RegistriesConfig;
  registriesConfPaths?: RegistriesConfPaths;
}

/** A blob stream as returned by getBlob, with where it really starts. */
export type BlobStream = IncomingMessage & BlobStreamInfo;

type AuthMode = 'registry' | 'none' | { header: string };

interface RequestSpec {
  method: 'GET' | 'HEAD' | 'POST';
  url: URL;
  headers?: OutgoingHttpHeaders;
  body?: string;
  auth: AuthMode;
  signal?: AbortSignal;
  /** What we are doing, for messages: "fetching the manifest". */
  purpose: string;
}

function defaultUserAgent(): string {
  return `bootc-ts/${toolVersion()}`;
}

function lookupWith(overrides: Readonly<Record<string, string>> | undefined): LookupFunction | undefined {
  if (!overrides || Object.keys(overrides).length === 0) return undefined;
  return ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    const address = overrides[hostname];
    if (address === undefined) return dnsLookup(hostname, options as never, callback as never);
    const family = address.includes(':') ? 6 : 4;
    if (options?.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as unknown as LookupFunction;
}

function combineSignals(signal: AbortSignal | undefined): AbortSignal {
  return signal ? AbortSignal.any([signal, cancellation.signal]) : cancellation.signal;
}

/** Read a body up to `limit` bytes; null if it is longer (the response is then destroyed). */
async function readLimited(res: IncomingMessage, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      res.destroy();
      return null;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function errorBody(res: IncomingMessage): Promise<string> {
  try {
    const body = await readLimited(res, ERROR_BODY_LIMIT);
    return body === null ? '' : body.toString('utf8');
  } catch {
    return '';
  }
}

function hostOf(url: URL): string {
  return url.host;
}

/** docker.io is a name, not a server: its API lives at registry-1.docker.io (as in containers-image). */
export function registryApiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

/** One repository at one registry endpoint. Holds its connections, tokens and scheme. */
export class RegistryClient {
  private scheme: 'https' | 'http' = 'https';
  private readonly tokens = new Map<string, { header: string; expiresAt: number }>();
  private basicHeader: string | null = null;
  private credentialLookup: CredentialLookup | null = null;
  private readonly retry: RetryPolicy;
  private readonly userAgent: string;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly lookup: LookupFunction | undefined;
  /** The credential files consulted so far, for access-denied messages. */
  get credentialsTried(): CredentialLookup | null {
    return this.credentialLookup;
  }

  constructor(
    readonly endpoint: RegistryEndpoint,
    /** The image as the user named it, for messages. */
    readonly imageName: string,
    private readonly options: RegistryClientOptions = {},
  ) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.userAgent = options.userAgent ?? defaultUserAgent();
    this.lookup = lookupWith(options.resolve);
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    // An insecure registry (or one on loopback) may present any certificate.
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: !endpoint.insecure });
  }

  get registry(): string {
    return this.endpoint.registry;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private url(path: string): URL {
    return new URL(`${this.scheme}://${registryApiHost(this.endpoint.registry)}/v2/${this.endpoint.repository}/${path}`);
  }

  /** Fetch a manifest or index by tag or digest; bounded in size and checked to parse. */
  async getManifest(tagOrDigest: string, options: { signal?: AbortSignal } = {}): Promise<FetchedManifest> {
    const what = `${this.endpoint.registry}/${this.endpoint.repository}${tagOrDigest.includes(':') ? '@' : ':'}${tagOrDigest}`;
    const res = await this.request({
      method: 'GET',
      url: this.url(`manifests/${tagOrDigest}`),
      headers: { accept: ACCEPTED_MANIFEST_TYPES.join(', ') },
      auth: 'registry',
      signal: options.signal,
      purpose: 'fetching the manifest',
    });
    if (res.statusCode === 404) {
      const summary = registryErrorSummary(await errorBody(res));
      throw new UserError(`image ${what} not found in registry ${this.endpoint.registry}${summary ? ` (${summary})` : ''}`, {
        hint: `check the image name and tag; \`skopeo list-tags docker://${this.endpoint.registry}/${this.endpoint.repository}\` lists the tags`,
      });
    }
    if (res.statusCode !== 200) throw await this.unexpectedStatus(res, 'fetching the manifest');
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_MANIFEST_BYTES) {
      res.destroy();
      checkManifestSize(declared, this.imageName);
    }
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES);
    if (bytes === null) checkManifestSize(MAX_MANIFEST_BYTES + 1, this.imageName);
    const body = bytes as Buffer;
    const servedType = res.headers['content-type'];
    const doc = parseManifestDocument(body, servedType, this.imageName);
    const mediaType = doc.kind === 'index' ? doc.index.mediaType : doc.manifest.mediaType;
    const computed = sha256Digest(body);
    let digest = computed;
    if (tagOrDigest.includes(':')) {
      // Asked by digest: report that digest; the puller compares it with the bytes.
      digest = tagOrDigest;
    } else {
      const header = res.headers['docker-content-digest'];
      if (typeof header === 'string' && header.startsWith('sha256:') && header !== computed) {
        throw new UserError(`registry ${this.endpoint.registry} sent a manifest for ${what} whose bytes hash to ${computed}, not the ${header} it announced`, {
          hint: 'the registry or a proxy in between corrupted the manifest; retry, or pull by digest from another mirror',
        });
      }
    }
    return { bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength), mediaType, digest };
  }

  /** The raw bytes of the manifest at `tag` (bounded), or null on 404; not parsed. */
  async getRawManifest(tag: string, accept: readonly string[], options: { signal?: AbortSignal } = {}): Promise<Uint8Array | null> {
    const res = await this.request({
      method: 'GET',
      url: this.url(`manifests/${tag}`),
      headers: { accept: accept.join(', ') },
      auth: 'registry',
      signal: options.signal,
      purpose: `fetching the manifest tagged ${tag}`,
    });
    if (res.statusCode === 404) {
      await errorBody(res);
      return null;
    }
    if (res.statusCode !== 200) throw await this.unexpectedStatus(res, `fetching the manifest tagged ${tag}`);
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES);
    if (bytes === null) checkManifestSize(MAX_MANIFEST_BYTES + 1, `${this.imageName} (tag ${tag})`);
    return new Uint8Array(bytes!);
  }

  /**
   * Stream a blob, from `offset` when resuming. When the registry ignores the Range header
   * the stream starts at 0 and says so in `startOffset`.
   */
  async getBlob(descriptor: Descriptor, options: BlobFetchOptions = {}): Promise<BlobStream> {
    const offset = options.offset ?? 0;
    const url = this.url(`blobs/${descriptor.digest}`);
    const fetchFrom = (from: number): Promise<IncomingMessage> =>
      this.request({
        method: 'GET',
        url,
        headers: from > 0 ? { range: `bytes=${from}-` } : {},
        auth: 'registry',
        signal: options.signal,
        purpose: `fetching blob ${descriptor.digest}`,
      });
    let res = await fetchFrom(offset);
    let startOffset = offset;
    if (offset > 0) {
      const contentRange = res.headers['content-range'];
      const honoured = res.statusCode === 206 && typeof contentRange === 'string' && new RegExp(`^bytes ${offset}-`).test(contentRange);
      if (res.statusCode === 206 && !honoured) {
        res.destroy();
        res = await fetchFrom(0);
        startOffset = 0;
      } else if (res.statusCode === 416 || res.statusCode === 200) {
        debug(`registry ${this.endpoint.registry} did not resume ${descriptor.digest} at byte ${offset} (HTTP ${res.statusCode}); starting again from 0`);
        if (res.statusCode === 416) {
          await errorBody(res);
          res = await fetchFrom(0);
        }
        startOffset = 0;
      }
    }
    if (res.statusCode === 404) {
      await errorBody(res);
      throw new UserError(`blob ${descriptor.digest} of image ${this.imageName} not found in registry ${this.endpoint.registry}`, {
        hint: 'the image was probably deleted or is being garbage-collected; pull it again, or by another tag',
      });
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) throw await this.unexpectedStatus(res, `fetching blob ${descriptor.digest}`);
    const stream = res as BlobStream;
    stream.startOffset = startOffset;
    return stream;
  }

  /** The size of a blob, or null when the registry does not have it. */
  async headBlob(digest: string, options: { signal?: AbortSignal } = {}): Promise<{ size: number } | null> {
    const res = await this.request({ method: 'HEAD', url: this.url(`blobs/${digest}`), auth: 'registry', signal: options.signal, purpose: `checking blob ${digest}` });
    res.resume();
    if (res.statusCode === 404) return null;
    if (res.statusCode !== 200) throw await this.unexpectedStatus(res, `checking blob ${digest}`);
    return { size: Number(res.headers['content-length'] ?? NaN) };
  }

  async listTags(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const res = await this.request({ method: 'GET', url: this.url('tags/list'), auth: 'registry', signal: options.signal, purpose: 'listing tags' });
    if (res.statusCode !== 200) throw await this.unexpectedStatus(res, 'listing tags');
    const body = await readLimited(res, MAX_MANIFEST_BYTES);
    const doc = JSON.parse(body?.toString('utf8') ?? '{}') as { tags?: unknown };
    return Array.isArray(doc.tags) ? doc.tags.filter((t): t is string => typeof t === 'string') : [];
  }

  /** One HTTP exchange; resolves at the response headers. */
  private send(spec: RequestSpec, headers: OutgoingHttpHeaders, signal: AbortSignal): Promise<IncomingMessage> {
    const isHttps = spec.url.protocol === 'https:';
    const module = isHttps ? https : http;
    return new Promise((resolve, reject) => {
      const req = module.request(spec.url, {
        method: spec.method,
        headers,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
        signal,
        timeout: SOCKET_IDLE_TIMEOUT_MS,
        ...(this.lookup ? { lookup: this.lookup } : {}),
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no data from ${spec.url.host} for ${SOCKET_IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('response', resolve);
      req.on('error', reject);
      req.end(spec.body);
    });
  }

  /**
   * Send with authentication, redirects and retries. Returns any response that is not an
   * auth failure, a redirect, or a retryable status (after the last retry it is returned).
   */
  private async request(spec: RequestSpec): Promise<IncomingMessage> {
    const signal = combineSignals(spec.signal);
    const registryHost = registryApiHost(this.endpoint.registry);
    let url = spec.url;
    let attempt = 1;
    let answeredChallenge = false;
    let redirects = 0;
    for (;;) {
      if (signal.aborted) throw new InterruptedError();
      const onRegistry = hostOf(url) === registryHost;
      const headers: OutgoingHttpHeaders = { 'user-agent': this.userAgent, ...spec.headers };
      // Credentials go only to the registry itself, never to where it redirects blobs.
      const authorization = spec.auth === 'registry' ? (onRegistry ? this.authorization() : null) : spec.auth === 'none' ? null : spec.auth.header;
      if (authorization) headers['authorization'] = authorization;
      let res: IncomingMessage;
      try {
        res = await this.send({ ...spec, url }, headers, signal);
      } catch (err) {
        if (signal.aborted) throw new InterruptedError();
        if (url.protocol === 'https:' && isTlsToPlainHttpError(err)) {
          if (onRegistry && this.endpoint.insecure) {
            debug(`registry ${registryHost} speaks plain HTTP; switching to http://`);
            this.scheme = 'http';
            url = new URL(url.href.replace(/^https:/, 'http:'));
            continue;
          }
          throw new UserError(`registry ${url.host} answered a TLS connection in plain HTTP while ${spec.purpose} for ${this.imageName}`, {
            hint: `if ${url.host} really is a plain-HTTP registry, mark it insecure in /etc/containers/registries.conf:\n  [[registry]]\n  location = "${url.host}"\n  insecure = true`,
            cause: err,
          });
        }
        if (isTlsCertificateError(err)) {
          throw new UserError(`the TLS certificate of registry ${url.host} is not trusted (${(err as Error).message}) while ${spec.purpose} for ${this.imageName}`, {
            hint: `install the registry's CA certificate in the system trust store, or mark it \`insecure = true\` in /etc/containers/registries.conf`,
            cause: err,
          });
        }
        if (isRetryableNetworkError(err) && attempt < this.retry.attempts) {
          const delay = backoffDelayMs(attempt, this.retry.baseDelayMs, this.retry.maxDelayMs);
          debug(`${spec.purpose} from ${url.host}: ${(err as Error).message}; retry ${attempt} of ${this.retry.attempts - 1} in ${delay} ms`);
          attempt++;
          await sleep(delay, undefined, { signal }).catch(() => undefined);
          continue;
        }
        throw this.unreachable(url, spec, err, attempt);
      }
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(status) && location) {
        res.resume();
        if (++redirects > MAX_REDIRECTS) {
          throw new UserError(`registry ${registryHost} redirected more than ${MAX_REDIRECTS} times while ${spec.purpose} for ${this.imageName}`, {
            hint: 'the registry or its storage backend is misconfigured; report it to its operator',
          });
        }
        const next = new URL(location, url);
        if (next.protocol === 'http:' && !this.endpoint.insecure) {
          throw new UserError(`registry ${registryHost} redirected to plain-HTTP ${next.host} while ${spec.purpose} for ${this.imageName}`, {
            hint: `refusing to fetch over plain HTTP; mark ${registryHost} \`insecure = true\` in registries.conf if that is intended`,
          });
        }
        url = next;
        continue;
      }
      if (status === 401 && spec.auth === 'registry' && onRegistry && !answeredChallenge) {
        const challenge = res.headers['www-authenticate'];
        await errorBody(res);
        answeredChallenge = true;
        await this.answerChallenge(typeof challenge === 'string' ? challenge : '', spec, signal);
        continue;
      }
      if ((status === 401 || status === 403) && spec.auth === 'registry') {
        throw await this.denied(res, spec);
      }
      if (isRetryableStatus(status) && attempt < this.retry.attempts) {
        const delay = backoffDelayMs(attempt, this.retry.baseDelayMs, this.retry.maxDelayMs, res.headers['retry-after'] as string | undefined);
        debug(`${spec.purpose} from ${url.host}: HTTP ${status}; retry ${attempt} of ${this.retry.attempts - 1} in ${delay} ms`);
        res.resume();
        attempt++;
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        continue;
      }
      return res;
    }
  }

  private authorization(): string | null {
    const token = this.tokens.get(pullScope(this.endpoint.repository));
    if (token && token.expiresAt > Date.now()) return token.header;
    return this.basicHeader;
  }

  private async credentials(): Promise<CredentialLookup> {
    if (this.credentialLookup === null) {
      this.credentialLookup = await lookupCredentials(this.endpoint.registry, this.endpoint.repository, this.options.credentials);
      const found = this.credentialLookup.credential;
      debug(`credentials for ${this.endpoint.registry}: ${found ? `${found.source.file} (${found.source.key})` : 'none'}; tried ${describeTried(this.credentialLookup.tried, this.endpoint.registry)}`);
    }
    return this.credentialLookup;
  }

  private async answerChallenge(header: string, spec: RequestSpec, signal: AbortSignal): Promise<void> {
    const challenge = chooseChallenge(parseWwwAuthenticate(header));
    const { credential } = await this.credentials();
    if (challenge === null) {
      throw new UserError(`registry ${this.endpoint.registry} requires an authentication scheme we do not support (${header || 'no WWW-Authenticate header'}) while ${spec.purpose} for ${this.imageName}`, {
        hint: 'registries normally offer Bearer or Basic authentication; check that the address is really a registry',
      });
    }
    if (challenge.scheme === 'basic') {
      if (credential === null) throw await this.deniedMessage(401, null, spec);
      this.basicHeader = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
      return;
    }
    const realm = challenge.params['realm'];
    if (!realm) {
      throw new UserError(`registry ${this.endpoint.registry} asked for a Bearer token without saying where to get one (no realm)`, {
        hint: 'the registry is misconfigured; report it to its operator',
      });
    }
    const scope = pullScope(this.endpoint.repository);
    const tokenUrl = new URL(realm);
    if (tokenUrl.protocol === 'http:' && !this.endpoint.insecure) {
      throw new UserError(`registry ${this.endpoint.registry} sends us to a plain-HTTP token server (${realm})`, {
        hint: `refusing to send credentials over plain HTTP; mark ${this.endpoint.registry} \`insecure = true\` in registries.conf if that is intended`,
      });
    }
    const service = challenge.params['service'];
    let tokenSpec: RequestSpec;
    if (credential?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.identityToken, client_id: 'bootc-ts', scope });
      if (service) form.set('service', service);
      tokenSpec = {
        method: 'POST',
        url: tokenUrl,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        auth: 'none',
        signal,
        purpose: 'fetching a registry token',
      };
    } else {
      if (service) tokenUrl.searchParams.set('service', service);
      tokenUrl.searchParams.set('scope', scope);
      const basic = credential ? `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}` : null;
      tokenSpec = { method: 'GET', url: tokenUrl, auth: basic ? { header: basic } : 'none', signal, purpose: 'fetching a registry token' };
    }
    const res = await this.request(tokenSpec);
    if (res.statusCode === 401 || res.statusCode === 403) throw await this.deniedMessage(res.statusCode, await errorBody(res), spec, `the token server ${tokenUrl.host}`);
    if (res.statusCode !== 200) throw await this.unexpectedStatus(res, 'fetching a registry token');
    const body = await readLimited(res, TOKEN_BODY_LIMIT);
    let token: string | undefined;
    let lifetime = DEFAULT_TOKEN_LIFETIME_S;
    try {
      const doc = JSON.parse(body?.toString('utf8') ?? '') as { token?: unknown; access_token?: unknown; expires_in?: unknown };
      token = typeof doc.token === 'string' && doc.token !== '' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : undefined;
      if (typeof doc.expires_in === 'number' && doc.expires_in > 0) lifetime = doc.expires_in;
    } catch {
      token = undefined;
    }
    if (!token) {
      throw new UserError(`the token server ${tokenUrl.host} of registry ${this.endpoint.registry} answered without a token`, {
        hint: 'the registry\'s token service is misbehaving; retry later or report it to its operator',
      });
    }
    this.tokens.set(scope, { header: `Bearer ${token}`, expiresAt: Date.now() + lifetime * 1000 - TOKEN_EXPIRY_MARGIN_MS });
  }

  private async denied(res: IncomingMessage, spec: RequestSpec): Promise<UserError> {
    return this.deniedMessage(res.statusCode ?? 0, await errorBody(res), spec);
  }

  private async deniedMessage(status: number, body: string | null, spec: RequestSpec, by?: string): Promise<UserError> {
    const lookup = await this.credentials();
    const summary = body ? registryErrorSummary(body) : null;
    const found = lookup.credential;
    const credentials = found
      ? `the credentials for ${found.source.key} from ${found.source.file} were not accepted`
      : `no credentials for ${this.endpoint.registry} were found (tried ${describeTried(lookup.tried, this.endpoint.registry)})`;
    const hostScope = this.options.credentials?.scope === 'host';
    const where = lookup.tried[0]?.path;
    return new UserError(
      `access to image ${this.imageName} denied by ${by ?? `registry ${this.endpoint.registry}`} (HTTP ${status}${summary ? `: ${summary}` : ''}) while ${spec.purpose}; ${credentials}`,
      {
        hint: hostScope
          ? `put a pull secret for ${this.endpoint.registry} in /etc/ostree/auth.json (\`podman login --authfile /etc/ostree/auth.json ${this.endpoint.registry}\`)`
          : `log in with \`podman login ${this.endpoint.registry}\`${where ? ` (writes ${where})` : ''}, or point REGISTRY_AUTH_FILE at an auth.json with an entry for ${this.endpoint.registry}`,
      },
    );
  }

  private async unexpectedStatus(res: IncomingMessage, purpose: string): Promise<UserError> {
    const summary = registryErrorSummary(await errorBody(res));
    const status = res.statusCode ?? 0;
    return new UserError(`registry ${this.endpoint.registry} answered HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd() + ` while ${purpose} for ${this.imageName}${summary ? ` (${summary})` : ''}`, {
      hint: status >= 500 || status === 429 ? 'the registry is failing or overloaded; retry later' : 'check the image name; the registry refused the request',
    });
  }

  private unreachable(url: URL, spec: RequestSpec, err: unknown, attempts: number): UserError {
    const code = (err as { code?: unknown }).code;
    return new UserError(
      `cannot reach registry ${url.host} while ${spec.purpose} for ${this.imageName}: ${typeof code === 'string' ? `${code} ` : ''}(${(err as Error).message})${attempts > 1 ? ` after ${attempts} tries` : ''}`,
      {
        hint: `check the host name and port, that the registry is running, and the network (\`curl -v ${url.protocol}//${url.host}/v2/\`)`,
        cause: err,
      },
    );
  }
}

/** The registry transport: manifests from the first endpoint (mirror or origin) that serves them. */
class RegistrySource implements ImageSource {
  private readonly clients: RegistryClient[];
  private chosen: RegistryClient | null = null;

  constructor(
    readonly reference: ImageReference,
    endpoints: readonly RegistryEndpoint[],
    options: RegistryClientOptions,
  ) {
    const name = formatReference(reference);
    this.clients = endpoints.map((e) => new RegistryClient(e, name, options));
  }

  /** The client that served the manifest, once one has. */
  get client(): RegistryClient | null {
    return this.chosen;
  }

  private async firstThatWorks<T>(fn: (client: RegistryClient) => Promise<T>): Promise<T> {
    if (this.chosen) return fn(this.chosen);
    let lastError: unknown;
    for (const client of this.clients) {
      try {
        const result = await fn(client);
        this.chosen = client;
        return result;
      } catch (err) {
        if (err instanceof InterruptedError) throw err;
        lastError = err;
        if (client.endpoint.mirror) debug(`mirror ${client.endpoint.registry} failed (${(err as Error).message}); trying the next endpoint`);
      }
    }
    throw lastError;
  }

  getManifest(digest?: string): Promise<FetchedManifest> {
    const target = digest ?? this.reference.digest ?? this.reference.tag ?? 'latest';
    return this.firstThatWorks((c) => c.getManifest(target));
  }

  getBlob(descriptor: Descriptor, options?: BlobFetchOptions): Promise<NodeJS.ReadableStream> {
    return this.firstThatWorks((c) => c.getBlob(descriptor, options));
  }

  getTaggedManifest(tag: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | null> {
    return this.firstThatWorks((c) => c.getRawManifest(tag, [MediaType.ociManifest], options));
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.close();
  }
}

/** Open a `registry` reference: resolve registries.conf, then fetch lazily. */
export async function openRegistrySource(ref: ImageReference, options: RegistrySourceOptions = {}): Promise<ImageSource> {
  if (ref.transport !== 'registry') {
    throw new UserError(`${formatReference(ref)} is not a registry image`, { hint: 'use the transport its prefix names' });
  }
  const config = options.registriesConf ?? (await loadRegistriesConf(options.registriesConfPaths));
  return new RegistrySource(ref, resolveEndpoints(config, ref), options);
}
