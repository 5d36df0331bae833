/**
 * The pure parts of talking to a registry: `WWW-Authenticate` challenges (RFC 7235 as
 * registries write them), token scopes, and which failures are worth retrying.
 */

export interface AuthChallenge {
  /** Lower-case scheme: `bearer`, `basic`, … */
  scheme: string;
  /** Parameter names lower-cased: realm, service, scope, error. */
  params: Record<string, string>;
}

/**
 * Parse a `WWW-Authenticate` header value into its challenges, e.g.
 * `Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"`.
 * Values may be quoted (with backslash escapes) or bare tokens; a header may carry several
 * challenges separated by commas.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && !/[\s,=]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  let current: AuthChallenge | null = null;
  while (i < n) {
    skipSpace();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const token = readToken();
    if (token === '') {
      i++;
      continue;
    }
    skipSpace();
    if (header[i] === '=' && current !== null) {
      i++;
      skipSpace();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && header[i] !== ',') i++;
        value = header.slice(start, i).trim();
      }
      current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;
}

/** The first challenge we can answer: Bearer preferred, then Basic. */
export function chooseChallenge(challenges: readonly AuthChallenge[]): AuthChallenge | null {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? null;
}

/** The token scope for pulling a repository (distribution token spec). */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** HTTP statuses that mean "try again later" rather than "no". */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** Network errors that a later attempt may not hit. */
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

export function isRetryableNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return true;
  return err instanceof Error && /socket hang up/.test(err.message);
}

/**
 * A TLS client that reached a plain-HTTP server: OpenSSL sees the server's HTTP reply
 * where a TLS record should be ("wrong version number", or "packet length too long").
 */
export function isTlsToPlainHttpError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  return (
    code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' ||
    code === 'ERR_SSL_HTTP_REQUEST' ||
    (/wrong version number|packet length too long|http request/i.test(message) && /ssl|tls/i.test(message + code))
  );
}

/** Certificate problems: self-signed, unknown CA, wrong host name, expired. */
export function isTlsCertificateError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    (code.startsWith('CERT_') ||
      code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
      code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
      code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
      code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ||
      code === 'ERR_TLS_CERT_ALTNAME_INVALID')
  );
}

/** Delay before retry `attempt` (1-based): doubling from `baseMs`, capped, honouring Retry-After. */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, retryAfter?: string | null): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  if (retryAfter) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(maxMs, Math.max(exponential, seconds * 1000));
  }
  return exponential;
}

/** The `{"errors":[{code,message}]}` body of a distribution-spec error, summarised. */
export function registryErrorSummary(body: string): string | null {
  try {
    const doc = JSON.parse(body) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    if (!Array.isArray(doc.errors) || doc.errors.length === 0) return null;
    return doc.errors
      .map((e) => [e.code, e.message].filter((x) => typeof x === 'string' && x !== '').join(': '))
      .filter((s) => s !== '')
      .join('; ');
  } catch {
    return null;
  }
}
