/**
 * A tiny bearer-token server for docker-registry's `auth: token` mode, on 127.0.0.1.
 *
 * It checks HTTP basic credentials against a fixed user table and issues RS256 JWTs in the
 * shape distribution's token spec describes: header `kid` is the libtrust fingerprint of
 * the signing key (sha256 of the DER public key, first 240 bits, base32 in 12 groups of 4
 * joined by ":"), and the claims carry `iss`, `aud` (the service), `sub`, `exp`/`nbf`/`iat`,
 * `jti` and `access` — the granted actions per requested `repository:NAME:ACTIONS` scope.
 * The registry trusts the self-signed certificate written next to the key.
 */
import http from 'node:http';
import { createPrivateKey, createPublicKey, createHash, randomBytes, sign } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec.js';

export interface TokenIssuer {
  realm: string;
  service: string;
  issuer: string;
  certificatePath: string;
  /** Every token request seen: who asked (null = anonymous) and for what scopes. */
  requests: Array<{ user: string | null; scopes: string[]; status: number }>;
  stop(): Promise<void>;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** The libtrust key ID docker-registry matches a JWT `kid` against. */
export function libtrustKeyId(publicKeyDer: Buffer): string {
  const encoded = base32(createHash('sha256').update(publicKeyDer).digest().subarray(0, 30));
  return encoded.match(/.{4}/g)!.join(':');
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

export async function startTokenIssuer(options: { dir: string; users: Record<string, string> }): Promise<TokenIssuer> {
  await mkdir(options.dir, { recursive: true });
  const keyPath = join(options.dir, 'key.pem');
  const certificatePath = join(options.dir, 'cert.pem');
  await run({
    description: 'Generating the test token signing key',
    argv: ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certificatePath, '-days', '2', '-subj', '/CN=bootc-test-issuer'],
  });
  const privateKey = createPrivateKey(await readFile(keyPath));
  const kid = libtrustKeyId(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  const service = 'bootc-test-registry';
  const issuer = 'bootc-test-issuer';
  const requests: TokenIssuer['requests'] = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const scopes = url.searchParams.getAll('scope');
    let user: string | null = null;
    const authz = req.headers.authorization;
    if (authz?.startsWith('Basic ')) {
      const decoded = Buffer.from(authz.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const name = decoded.slice(0, colon);
      if (colon === -1 || options.users[name] !== decoded.slice(colon + 1)) {
        requests.push({ user: name, scopes, status: 401 });
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }));
        return;
      }
      user = name;
    }
    // Anonymous callers get a valid token that grants nothing, as public token servers do.
    const access = user === null ? [] : scopes.flatMap((scope) => {
      const [type, ...rest] = scope.split(':');
      const actions = rest.pop()?.split(',') ?? [];
      return type === 'repository' ? [{ type, name: rest.join(':'), actions }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', kid };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(12).toString('hex'), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signingInput}.${b64url(sign('RSA-SHA256', Buffer.from(signingInput), privateKey))}`;
    requests.push({ user, scopes, status: 200 });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certificatePath,
    requests,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
