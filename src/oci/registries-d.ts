/**
 * containers-registries.d(5): where a registry image's signatures are.
 *
 * Every `*.yaml` in the directory is read; `default-docker` and each `docker` namespace may
 * be given once across all files. For one image the most specific `docker` key (the same
 * scopes as policy.json's docker transport: repo:tag, repo, namespaces, host, `*.domain`)
 * that sets a field wins, field by field, then `default-docker`:
 *
 *   docker:
 *     registry.example.com/os:
 *       lookaside: https://sigs.example.com/os      (`sigstore:` is the old name)
 *       use-sigstore-attachments: true
 *
 * With no lookaside configured, containers/image reads the local default directory
 * (`/var/lib/containers/sigstore`, or `~/.local/share/containers/sigstore` for non-root).
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../core/errors.js';
import { dockerNamespaces } from './signature-policy.js';
import { lookasideBase } from './signature-sources.js';
import type { DockerReference } from './reference.js';

export interface SignatureStorage {
  lookaside?: string;
  useSigstoreAttachments?: boolean;
}

export interface RegistriesD {
  defaultDocker: SignatureStorage | null;
  docker: Map<string, SignatureStorage>;
  /** Files read, for messages. */
  files: string[];
}

export const SYSTEM_REGISTRIES_D = '/etc/containers/registries.d';

function invalid(file: string, what: string): UserError {
  return new UserError(`${file} is not a valid registries.d file: ${what}`, {
    hint: 'see containers-registries.d(5): `docker: {HOST/NAMESPACE: {lookaside: URL, use-sigstore-attachments: true}}`',
  });
}

function storage(value: unknown, where: string, file: string): SignatureStorage {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(file, `${where} must be a mapping`);
  const fields = value as Record<string, unknown>;
  if (fields['lookaside'] !== undefined && fields['sigstore'] !== undefined) throw invalid(file, `${where} sets both lookaside and its old name sigstore`);
  const lookaside = fields['lookaside'] ?? fields['sigstore'];
  const use = fields['use-sigstore-attachments'];
  if (lookaside !== undefined && (typeof lookaside !== 'string' || lookaside === '')) throw invalid(file, `${where}.lookaside must be a URL`);
  if (use !== undefined && typeof use !== 'boolean') throw invalid(file, `${where}.use-sigstore-attachments must be true or false`);
  if (typeof lookaside === 'string') lookasideBase(lookaside, `${file}: ${where}`);
  return { ...(typeof lookaside === 'string' ? { lookaside } : {}), ...(typeof use === 'boolean' ? { useSigstoreAttachments: use } : {}) };
}

/** Merge the files' texts (name → text, in name order). */
export function parseRegistriesD(files: ReadonlyArray<{ file: string; text: string }>): RegistriesD {
  const out: RegistriesD = { defaultDocker: null, docker: new Map(), files: files.map((f) => f.file) };
  const declaredIn = new Map<string, string>();
  for (const { file, text } of files) {
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      throw invalid(file, (err as Error).message);
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw invalid(file, 'the top level must be a mapping');
    const top = doc as Record<string, unknown>;
    if (top['default-docker'] !== undefined) {
      if (out.defaultDocker !== null) throw invalid(file, `default-docker is also set in ${declaredIn.get('default-docker')}`);
      out.defaultDocker = storage(top['default-docker'], 'default-docker', file);
      declaredIn.set('default-docker', file);
    }
    const docker = top['docker'];
    if (docker === undefined || docker === null) continue;
    if (typeof docker !== 'object' || Array.isArray(docker)) throw invalid(file, 'docker must be a mapping of namespaces');
    for (const [scope, value] of Object.entries(docker as Record<string, unknown>)) {
      const key = `docker ${scope}`;
      if (declaredIn.has(key)) throw invalid(file, `docker namespace ${scope} is also set in ${declaredIn.get(key)}`);
      declaredIn.set(key, file);
      out.docker.set(scope, storage(value, `docker.${scope}`, file));
    }
  }
  return out;
}

export interface RegistriesDPaths {
  /** Use this directory only. */
  dir?: string;
  homeDir?: string;
  uid?: number;
}

/** `~/.config/containers/registries.d` when it exists, else the system directory. */
async function registriesDir(paths: RegistriesDPaths): Promise<string> {
  if (paths.dir !== undefined) return paths.dir;
  const user = join(paths.homeDir ?? homedir(), '.config/containers/registries.d');
  try {
    if ((await stat(user)).isDirectory()) return user;
  } catch {
    // absent: the system directory
  }
  return SYSTEM_REGISTRIES_D;
}

export async function loadRegistriesD(paths: RegistriesDPaths = {}): Promise<RegistriesD> {
  const dir = await registriesDir(paths);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return parseRegistriesD([]);
    throw new UserError(`cannot read ${dir}: ${(err as Error).message}`, { hint: 'check its permissions', cause: err });
  }
  const files = await Promise.all(names.map(async (n) => ({ file: join(dir, n), text: await readFile(join(dir, n), 'utf8') })));
  return parseRegistriesD(files);
}

/** The storage settings for one image: field by field, the most specific scope that sets it. */
export function signatureStorageFor(config: RegistriesD, ref: DockerReference, uid: number = process.getuid?.() ?? 0, home: string = homedir()): Required<SignatureStorage> {
  const id = dockerNamespaces(ref);
  const scopes = [id.identity, ...id.namespaces].map((s) => config.docker.get(s)).filter((s): s is SignatureStorage => s !== undefined);
  if (config.defaultDocker) scopes.push(config.defaultDocker);
  const lookaside = scopes.find((s) => s.lookaside !== undefined)?.lookaside ?? defaultLookaside(uid, home);
  const useSigstoreAttachments = scopes.find((s) => s.useSigstoreAttachments !== undefined)?.useSigstoreAttachments ?? false;
  return { lookaside, useSigstoreAttachments };
}

export function defaultLookaside(uid: number, home: string): string {
  return uid === 0 ? 'file:///var/lib/containers/sigstore' : `file://${join(home, '.local/share/containers/sigstore')}`;
}
