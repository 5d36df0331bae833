/**
 * Registry credentials from the files podman, skopeo and docker write (containers-auth.json(5)).
 *
 * Which files, in order (the first file with an entry for the registry wins, as in
 * containers-image):
 * - user pulls: `$REGISTRY_AUTH_FILE` if set, else `$XDG_RUNTIME_DIR/containers/auth.json`
 *   (`/run/containers/<uid>/auth.json` without XDG_RUNTIME_DIR); then
 *   `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/containers/auth.json`) and
 *   `~/.docker/config.json`.
 * - host updates: the system-wide pull secret bootc uses, the first of
 *   `/run/ostree/auth.json`, `/etc/ostree/auth.json`, `/usr/lib/ostree/auth.json` that exists
 *   and nothing else (without one, host pulls are anonymous, as upstream).
 *
 * Inside a file, `auths` is keyed by `host` or `host/repository/path`; the longest key that
 * is a prefix of the image's repository wins. The parser takes strings; the loader reads files
 * and records every file it looked at, so an access-denied error can name them.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';
import { DOCKER_HUB } from './reference.js';

export interface RegistryCredential {
  username: string;
  password: string;
  /** An OAuth2 refresh token (`identitytoken`), exchanged at the token realm instead of a password. */
  identityToken?: string;
  /** The auth file it came from and the key that matched, for messages. */
  source: { file: string; key: string };
}

/** One file the loader looked at and what it found there, for error messages. */
export interface CredentialFileTried {
  path: string;
  outcome: 'missing' | 'no-entry' | 'used';
}

export interface CredentialLookup {
  credential: RegistryCredential | null;
  tried: CredentialFileTried[];
}

/** A parsed auth file: normalised key → credential (without source). */
export type AuthFileEntries = Map<string, { username: string; password: string; identityToken?: string }>;

const LEGACY_DOCKER_HUB_KEYS = new Set(['index.docker.io', 'registry-1.docker.io']);

/**
 * Keys may be written as URLs (`https://index.docker.io/v1/`, what old docker clients
 * wrote); those mean the host only.
 */
export function normaliseAuthKey(key: string): string {
  let k = key.trim();
  const isUrl = /^https?:\/\//.test(k);
  if (isUrl) {
    k = k.replace(/^https?:\/\//, '');
    k = k.split('/')[0] ?? '';
  }
  k = k.replace(/\/+$/, '');
  const slash = k.indexOf('/');
  const host = slash === -1 ? k : k.slice(0, slash);
  if (LEGACY_DOCKER_HUB_KEYS.has(host)) k = DOCKER_HUB + k.slice(host.length);
  return k;
}

/** Parse auth.json / config.json text. `path` only names the file in errors. */
export function parseAuthFile(text: string, path: string): AuthFileEntries {
  const bad = (what: string): UserError =>
    new UserError(`the registry credentials file ${path} is not valid: ${what}`, {
      hint: `fix or remove ${path}; \`podman login REGISTRY --authfile ${path}\` rewrites it`,
    });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`malformed JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('the top level is not a JSON object');
  const entries: AuthFileEntries = new Map();
  const auths = (doc as { auths?: unknown }).auths;
  if (auths === undefined || auths === null) return entries;
  if (typeof auths !== 'object' || Array.isArray(auths)) throw bad('"auths" is not an object');
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    if (typeof value !== 'object' || value === null) throw bad(`the entry for "${key}" is not an object`);
    const { auth, identitytoken } = value as { auth?: unknown; identitytoken?: unknown };
    let username = '';
    let password = '';
    if (typeof auth === 'string' && auth !== '') {
      const decoded = Buffer.from(auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon === -1) throw bad(`the "auth" of "${key}" is not base64 of "user:password"`);
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    } else if (auth !== undefined && typeof auth !== 'string') {
      throw bad(`the "auth" of "${key}" is not a string`);
    }
    const entry: { username: string; password: string; identityToken?: string } = { username, password };
    if (typeof identitytoken === 'string' && identitytoken !== '') entry.identityToken = identitytoken;
    // An entry with neither (docker leaves these behind with credential helpers) gives nothing.
    if (username === '' && password === '' && entry.identityToken === undefined) continue;
    const normalised = normaliseAuthKey(key);
    // A key written both ways: the exact spelling wins over a normalised legacy URL.
    if (!entries.has(normalised) || normalised === key) entries.set(normalised, entry);
  }
  return entries;
}

/** The keys that can hold credentials for `registry/repository`, most specific first. */
export function candidateKeys(registry: string, repository: string): string[] {
  const keys: string[] = [];
  const parts = repository.split('/').filter((p) => p !== '');
  for (let n = parts.length; n >= 1; n--) keys.push(`${registry}/${parts.slice(0, n).join('/')}`);
  keys.push(registry);
  return keys;
}

/** The most specific entry of one parsed file for an image, or null. */
export function findCredential(
  entries: AuthFileEntries,
  registry: string,
  repository: string,
  file: string,
): RegistryCredential | null {
  for (const key of candidateKeys(registry, repository)) {
    const entry = entries.get(key);
    if (entry) return { ...entry, source: { file, key } };
  }
  return null;
}

export type CredentialScope = 'user' | 'host';

export interface CredentialFileOptions {
  /** Defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Defaults to os.homedir(). */
  homeDir?: string;
  /** Prefix for the system-wide pull secret paths (a sysroot); defaults to `/`. */
  root?: string;
  /** Defaults to process.getuid(). */
  uid?: number;
}

/** The files to consult, in order. */
export function credentialFiles(scope: CredentialScope, options: CredentialFileOptions = {}): string[] {
  if (scope === 'host') {
    const root = options.root ?? '/';
    return ['/run/ostree/auth.json', '/etc/ostree/auth.json', '/usr/lib/ostree/auth.json'].map((p) => join(root, p));
  }
  const env = options.env ?? process.env;
  const home = options.homeDir ?? homedir();
  const files: string[] = [];
  const explicit = env['REGISTRY_AUTH_FILE'];
  if (explicit) files.push(explicit);
  else if (env['XDG_RUNTIME_DIR']) files.push(join(env['XDG_RUNTIME_DIR'], 'containers', 'auth.json'));
  else files.push(join('/run/containers', String(options.uid ?? process.getuid?.() ?? 0), 'auth.json'));
  const configHome = env['XDG_CONFIG_HOME'] || join(home, '.config');
  files.push(join(configHome, 'containers', 'auth.json'));
  files.push(join(home, '.docker', 'config.json'));
  return files;
}

export interface CredentialLookupOptions extends CredentialFileOptions {
  scope?: CredentialScope;
  /** Use only these files (tests, `--authfile`). */
  files?: string[];
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new UserError(`cannot read the registry credentials file ${path}: ${(err as Error).message}`, {
      hint: 'check its permissions, or point REGISTRY_AUTH_FILE at a readable file',
      cause: err,
    });
  }
}

/** Find credentials for `registry/repository`, recording every file looked at. */
export async function lookupCredentials(
  registry: string,
  repository: string,
  options: CredentialLookupOptions = {},
): Promise<CredentialLookup> {
  const scope = options.scope ?? 'user';
  const files = options.files ?? credentialFiles(scope, options);
  const tried: CredentialFileTried[] = [];
  for (const path of files) {
    const text = await readIfExists(path);
    if (text === null) {
      tried.push({ path, outcome: 'missing' });
      continue;
    }
    const credential = findCredential(parseAuthFile(text, path), registry, repository, path);
    if (credential) {
      tried.push({ path, outcome: 'used' });
      return { credential, tried };
    }
    tried.push({ path, outcome: 'no-entry' });
    // The system-wide pull secret is one file: the first that exists is the only one read.
    if (scope === 'host' && options.files === undefined) break;
  }
  return { credential: null, tried };
}

/** "… (missing), … (no entry for quay.io)" — for access-denied messages. */
export function describeTried(tried: readonly CredentialFileTried[], registry: string): string {
  if (tried.length === 0) return 'no credential files were consulted';
  return tried
    .map((t) => `${t.path} (${t.outcome === 'missing' ? 'missing' : t.outcome === 'used' ? 'used' : `no entry for ${registry}`})`)
    .join(', ');
}
