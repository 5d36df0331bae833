/**
 * registries.conf(5), version 2: where a repository is really pulled from.
 *
 * `[[registry]]` tables match image names by `prefix` (longest match wins; `*.example.com`
 * matches sub-domains), may redirect them to another `location`, mark them `insecure` or
 * `blocked`, and list `[[registry.mirror]]`s to try first. Drop-ins in
 * `registries.conf.d/*.conf` are read in name order after the main file; a table with the
 * same prefix as an earlier one replaces it, as in containers-image. The v1 tables
 * `[registries.insecure]` / `[registries.block]` are understood too.
 *
 * The parser takes TOML text; the loader reads the files; `resolveEndpoints` is pure.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { UserError } from '../core/errors.js';
import type { ImageReference } from './types.js';

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

export interface MirrorEntry {
  location: string;
  insecure: boolean;
  pullFromMirror?: PullFromMirror;
}

export interface RegistryEntry {
  /** What image names this entry applies to: `host[/path]` or `*.domain`. */
  prefix: string;
  /** Where matching names are pulled from (the prefix replaced by this). */
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  pullFromMirror: PullFromMirror;
  mirrors: MirrorEntry[];
  /** The file that declared it, for messages. */
  file: string;
}

export interface RegistriesConfig {
  registries: RegistryEntry[];
}

export const emptyRegistriesConfig: RegistriesConfig = { registries: [] };

/** One place an image can be pulled from. */
export interface RegistryEndpoint {
  /** host[:port] to connect to. */
  registry: string;
  /** The repository path at that host. */
  repository: string;
  /** Plain HTTP and unverified TLS allowed (registries.conf `insecure`, or a loopback host). */
  insecure: boolean;
  mirror: boolean;
}

function badConfig(file: string, what: string): UserError {
  return new UserError(`${file} is not a valid registries.conf: ${what}`, {
    hint: 'see containers-registries.conf(5); each [[registry]] needs a `location` or a `prefix`',
  });
}

function optionalBool(file: string, table: Record<string, unknown>, key: string, where: string): boolean {
  const v = table[key];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw badConfig(file, `${where}: \`${key}\` must be true or false`);
  return v;
}

function optionalString(file: string, table: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = table[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badConfig(file, `${where}: \`${key}\` must be a string`);
  return v;
}

function pullFromMirrorValue(file: string, table: Record<string, unknown>, where: string): PullFromMirror | undefined {
  const v = optionalString(file, table, 'pull-from-mirror', where);
  if (v === undefined || v === '') return undefined;
  if (v !== 'all' && v !== 'digest-only' && v !== 'tag-only') {
    throw badConfig(file, `${where}: \`pull-from-mirror\` must be "all", "digest-only" or "tag-only", not "${v}"`);
  }
  return v;
}

/** Strip a scheme users sometimes write; registries.conf wants bare host[/path]. */
function bareLocation(file: string, value: string, where: string): string {
  if (/^[a-z]+:\/\//i.test(value)) throw badConfig(file, `${where}: "${value}" must not include a scheme (write host[:port][/path])`);
  return value.replace(/\/+$/, '');
}

/** Parse one registries.conf (or drop-in). `file` only names it in messages. */
export function parseRegistriesConf(text: string, file: string): RegistriesConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw badConfig(file, `TOML syntax error: ${(err as Error).message.split('\n')[0]}`);
  }
  const registries: RegistryEntry[] = [];
  const tables = doc['registry'];
  if (tables !== undefined) {
    if (!Array.isArray(tables)) throw badConfig(file, '`registry` must be an array of tables ([[registry]])');
    tables.forEach((raw: unknown, i) => {
      const where = `[[registry]] #${i + 1}`;
      if (typeof raw !== 'object' || raw === null) throw badConfig(file, `${where} is not a table`);
      const t = raw as Record<string, unknown>;
      const location = bareLocation(file, optionalString(file, t, 'location', where) ?? '', where);
      const prefix = bareLocation(file, optionalString(file, t, 'prefix', where) ?? '', where) || location;
      if (prefix === '') throw badConfig(file, `${where} has neither \`prefix\` nor \`location\``);
      if (prefix.startsWith('*.') && location !== '') {
        throw badConfig(file, `${where}: a wildcard prefix ("${prefix}") cannot have a \`location\``);
      }
      const mirrorsRaw = t['mirror'];
      const mirrors: MirrorEntry[] = [];
      if (mirrorsRaw !== undefined) {
        if (!Array.isArray(mirrorsRaw)) throw badConfig(file, `${where}: \`mirror\` must be an array of tables ([[registry.mirror]])`);
        mirrorsRaw.forEach((m: unknown, j) => {
          const mwhere = `${where} mirror #${j + 1}`;
          if (typeof m !== 'object' || m === null) throw badConfig(file, `${mwhere} is not a table`);
          const mt = m as Record<string, unknown>;
          const mloc = optionalString(file, mt, 'location', mwhere);
          if (!mloc) throw badConfig(file, `${mwhere} has no \`location\``);
          const mirror: MirrorEntry = { location: bareLocation(file, mloc, mwhere), insecure: optionalBool(file, mt, 'insecure', mwhere) };
          const pfm = pullFromMirrorValue(file, mt, mwhere);
          if (pfm) mirror.pullFromMirror = pfm;
          mirrors.push(mirror);
        });
      }
      const mirrorByDigestOnly = optionalBool(file, t, 'mirror-by-digest-only', where);
      const pullFromMirror = pullFromMirrorValue(file, t, where) ?? (mirrorByDigestOnly ? 'digest-only' : 'all');
      registries.push({
        prefix,
        location: prefix.startsWith('*.') ? '' : location || prefix,
        insecure: optionalBool(file, t, 'insecure', where),
        blocked: optionalBool(file, t, 'blocked', where),
        mirrorByDigestOnly,
        pullFromMirror,
        mirrors,
        file,
      });
    });
  }
  // Version 1 tables: lists of hosts that are insecure or blocked.
  const v1 = doc['registries'];
  if (v1 !== undefined && typeof v1 === 'object' && v1 !== null) {
    const v1t = v1 as Record<string, { registries?: unknown }>;
    for (const [kind, flag] of [['insecure', 'insecure'], ['block', 'blocked']] as const) {
      const hosts = v1t[kind]?.registries;
      if (hosts === undefined) continue;
      if (!Array.isArray(hosts) || hosts.some((h) => typeof h !== 'string')) throw badConfig(file, `[registries.${kind}] registries must be a list of strings`);
      for (const host of hosts as string[]) {
        let entry = registries.find((r) => r.prefix === host);
        if (!entry) {
          entry = { prefix: host, location: host, insecure: false, blocked: false, mirrorByDigestOnly: false, pullFromMirror: 'all', mirrors: [], file };
          registries.push(entry);
        }
        entry[flag] = true;
      }
    }
  }
  return { registries };
}

/** Later files win: an entry with the same prefix replaces the earlier one. */
export function mergeRegistriesConfigs(configs: readonly RegistriesConfig[]): RegistriesConfig {
  const byPrefix = new Map<string, RegistryEntry>();
  for (const config of configs) for (const entry of config.registries) byPrefix.set(entry.prefix, entry);
  return { registries: [...byPrefix.values()] };
}

export interface RegistriesConfPaths {
  /** Default /etc/containers/registries.conf. */
  file?: string;
  /** Default /etc/containers/registries.conf.d. */
  dropInDir?: string;
}

export const SYSTEM_REGISTRIES_CONF = '/etc/containers/registries.conf';
export const SYSTEM_REGISTRIES_CONF_D = '/etc/containers/registries.conf.d';

/** Read the main file (if any) and its drop-ins (`*.conf`, in name order). */
export async function loadRegistriesConf(paths: RegistriesConfPaths = {}): Promise<RegistriesConfig> {
  const file = paths.file ?? SYSTEM_REGISTRIES_CONF;
  const dir = paths.dropInDir ?? SYSTEM_REGISTRIES_CONF_D;
  const configs: RegistriesConfig[] = [];
  const main = await readOptional(file);
  if (main !== null) configs.push(parseRegistriesConf(main, file));
  let names: string[] = [];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.conf')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const name of names) {
    const path = join(dir, name);
    const text = await readOptional(path);
    if (text !== null) configs.push(parseRegistriesConf(text, path));
  }
  return mergeRegistriesConfigs(configs);
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UserError(`cannot read ${path}: ${(err as Error).message}`, { hint: 'check its permissions', cause: err });
  }
}

/** Does `prefix` cover the image name `name` (`host/repo`)? */
function prefixMatches(prefix: string, name: string): boolean {
  if (prefix.startsWith('*.')) {
    const host = name.split('/')[0] ?? '';
    return host.endsWith(prefix.slice(1)) && host.length > prefix.length - 1;
  }
  return name === prefix || name.startsWith(prefix + '/');
}

/** The entry that applies to an image name: the longest matching prefix (exact beats wildcard). */
export function findRegistryEntry(config: RegistriesConfig, name: string): RegistryEntry | null {
  let best: RegistryEntry | null = null;
  let bestScore = -1;
  for (const entry of config.registries) {
    if (!prefixMatches(entry.prefix, name)) continue;
    // Wildcards only ever match a host, so any exact prefix is more specific.
    const score = entry.prefix.startsWith('*.') ? entry.prefix.length : 10_000 + entry.prefix.length;
    if (score > bestScore) {
      best = entry;
      bestScore = score;
    }
  }
  return best;
}

/** 127.0.0.0/8, ::1 and localhost, with or without a port. */
export function isLoopbackHost(hostPort: string): boolean {
  let host = hostPort;
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']'));
  // One colon separates a port; more than one is a bare IPv6 address.
  else if (host.split(':').length === 2) host = host.slice(0, host.lastIndexOf(':'));
  host = host.toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function splitLocation(location: string): { registry: string; path: string } {
  const slash = location.indexOf('/');
  return slash === -1 ? { registry: location, path: '' } : { registry: location.slice(0, slash), path: location.slice(slash + 1) };
}

function endpointAt(location: string, rest: string, insecure: boolean, mirror: boolean): RegistryEndpoint {
  const { registry, path } = splitLocation(location);
  const repository = [path, rest].filter((p) => p !== '').join('/');
  return { registry, repository, insecure: insecure || isLoopbackHost(registry), mirror };
}

/**
 * The endpoints to try for a registry reference, in order: the mirrors that may serve it,
 * then the (possibly rewritten) location. A blocked registry is a UserError.
 */
export function resolveEndpoints(config: RegistriesConfig, ref: ImageReference): RegistryEndpoint[] {
  const registry = ref.registry;
  const repository = ref.repository;
  if (ref.transport !== 'registry' || registry === undefined || repository === undefined) {
    throw new UserError(`${ref.name} is not a registry image`, { hint: 'registries.conf applies only to registry references' });
  }
  const name = `${registry}/${repository}`;
  const entry = findRegistryEntry(config, name);
  if (!entry) return [endpointAt(registry, repository, false, false)];
  if (entry.blocked) {
    throw new UserError(`pulling ${name} is blocked by registries.conf (${entry.file}, prefix "${entry.prefix}")`, {
      hint: `remove \`blocked = true\` from that [[registry]] entry in ${entry.file}, or pull from another registry`,
    });
  }
  // A wildcard entry keeps the name as is (its mirrors stand in for the host); an exact
  // prefix is replaced by the location.
  const wildcard = entry.prefix.startsWith('*.');
  const rest = wildcard ? repository : name.slice(entry.prefix.length).replace(/^\//, '');
  const endpoints: RegistryEndpoint[] = [];
  const byDigest = ref.digest !== undefined;
  for (const mirror of entry.mirrors) {
    const policy = mirror.pullFromMirror ?? entry.pullFromMirror;
    if (policy === 'digest-only' && !byDigest) continue;
    if (policy === 'tag-only' && byDigest) continue;
    endpoints.push(endpointAt(mirror.location, rest, mirror.insecure, true));
  }
  endpoints.push(wildcard ? endpointAt(registry, repository, entry.insecure, false) : endpointAt(entry.location, rest, entry.insecure, false));
  return endpoints;
}
