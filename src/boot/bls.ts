/**
 * Boot Loader Specification Type #1 entries and systemd-boot's loader.conf, as text.
 *
 * One entry per deployment: `loader/entries/bootc-<stateroot>-<id>+3.conf`. The `+3` is
 * systemd-boot's boot counter: each boot it renames the file to `+<left>-<done>`, and the
 * booted system drops the counter once `boot-complete.target` is reached (bootc-boot-complete
 * service). An entry at `+0-…` sorts last, so the previous deployment boots instead.
 *
 * Which entry is the default: loader.conf says `default bootc-*`, and systemd-boot picks
 * the first matching entry in its sort order. All our entries share one `sort-key`, so
 * they are ordered by `version`, highest first (then entries with no tries left go last).
 * `version` is the deployment's boot order number: a new deployment gets max+1, and a
 * rollback rewrites the two numbers. The default therefore follows from the entries alone;
 * no EFI variable and no second file has to be updated in step with them.
 */
import { UserError, invariant } from '../core/errors.js';

export const ENTRY_PREFIX = 'bootc-';
export const ENTRIES_DIR = 'loader/entries';
export const LOADER_CONF_PATH = 'loader/loader.conf';
/** Failed boots a new deployment gets before systemd-boot falls back to the previous one. */
export const BOOT_COUNT_TRIES = 3;
/** Seconds the systemd-boot menu waits; long enough to pick the rollback entry by hand. */
export const DEFAULT_MENU_TIMEOUT_SECONDS = 3;

/** Stateroots may contain `-`, deployment ids may not, so the last `-` splits the name. */
const STATEROOT_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const DEPLOYMENT_ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.]*$/;

export function checkStateroot(stateroot: string): void {
  if (!STATEROOT_PATTERN.test(stateroot)) {
    throw new UserError(`invalid stateroot name ${JSON.stringify(stateroot)}`, {
      hint: 'use letters, digits, `_`, `.` and `-` (e.g. "default")',
    });
  }
}

export function checkDeploymentId(id: string): void {
  invariant(DEPLOYMENT_ID_PATTERN.test(id), `deployment id ${JSON.stringify(id)} has characters a BLS entry name cannot carry`);
}

export interface BootCounter {
  triesLeft: number;
  /** Absent on a fresh entry (`+3`); present once systemd-boot counted a boot (`+2-1`). */
  triesDone?: number;
}

export interface EntryName {
  stateroot: string;
  deploymentId: string;
  /** Absent once the deployment was marked good. */
  counter?: BootCounter;
}

/** `bootc-<stateroot>-<id>[+left[-done]].conf` */
export function entryFileName(name: EntryName): string {
  checkStateroot(name.stateroot);
  checkDeploymentId(name.deploymentId);
  let counter = '';
  if (name.counter) {
    counter = `+${name.counter.triesLeft}`;
    if (name.counter.triesDone !== undefined) counter += `-${name.counter.triesDone}`;
  }
  return `${ENTRY_PREFIX}${name.stateroot}-${name.deploymentId}${counter}.conf`;
}

/** The file name of a deployment's new entry, with a full boot counter. */
export const newEntryFileName = (stateroot: string, deploymentId: string): string =>
  entryFileName({ stateroot, deploymentId, counter: { triesLeft: BOOT_COUNT_TRIES } });

/** The inverse of entryFileName; null for a file that is not one of our entries. */
export function parseEntryFileName(fileName: string): EntryName | null {
  const match = /^bootc-([A-Za-z0-9_][A-Za-z0-9_.-]*)-([A-Za-z0-9_][A-Za-z0-9_.]*)(?:\+(\d+)(?:-(\d+))?)?\.conf$/.exec(fileName);
  if (!match) return null;
  const [, stateroot, deploymentId, left, done] = match;
  if (stateroot === undefined || deploymentId === undefined) return null;
  const name: EntryName = { stateroot, deploymentId };
  if (left !== undefined) {
    name.counter = { triesLeft: Number(left) };
    if (done !== undefined) name.counter.triesDone = Number(done);
  }
  return name;
}

export interface BlsEntry {
  title: string;
  /** The boot order number; the highest is the default (see the top of this file). */
  version: string;
  sortKey: string;
  /** Paths on the ESP, starting with `/`. */
  linux: string;
  initrd: string;
  options: string;
}

const BLS_KEYS: ReadonlyArray<[keyof BlsEntry, string]> = [
  ['title', 'title'],
  ['version', 'version'],
  ['sortKey', 'sort-key'],
  ['linux', 'linux'],
  ['initrd', 'initrd'],
  ['options', 'options'],
];

export function renderBlsEntry(entry: BlsEntry): string {
  const lines = BLS_KEYS.map(([field, key]) => {
    const value = entry[field];
    invariant(!/[\r\n]/.test(value), `BLS ${key} contains a line break`);
    invariant(value.trim().length > 0, `BLS ${key} is empty`);
    return `${key} ${value}`;
  });
  return lines.join('\n') + '\n';
}

/** Every `key value` line of an entry; repeated keys (e.g. two `initrd`) keep all values. */
export type ParsedBlsEntry = Record<string, string[]>;

export function parseBlsEntry(text: string): ParsedBlsEntry {
  const out: ParsedBlsEntry = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const space = line.search(/\s/);
    const key = space === -1 ? line : line.slice(0, space);
    const value = space === -1 ? '' : line.slice(space).trim();
    (out[key] ??= []).push(value);
  }
  return out;
}

/** The kernel arguments of a parsed entry as a list. */
export const entryOptions = (entry: ParsedBlsEntry): string[] =>
  (entry['options'] ?? []).flatMap((o) => o.split(/\s+/).filter(Boolean));

/** `KEY=value` lines of os-release(5), quotes and escapes removed. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const match = /^\s*([A-Z0-9_]+)=(.*)$/.exec(raw);
    if (!match) continue;
    const [, key, rawValue] = match as unknown as [string, string, string];
    let value = rawValue.trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\(["\\`$])/g, '$1');
    }
    out[key] = value;
  }
  return out;
}

/** "Debian GNU/Linux 12 (bookworm) 1": the image's PRETTY_NAME and its version label. */
export function entryTitle(osRelease: Record<string, string>, imageVersion?: string): string {
  const base = osRelease['PRETTY_NAME'] ?? osRelease['NAME'] ?? 'Linux';
  const title = imageVersion ? `${base} ${imageVersion}` : base;
  return title.replace(/[\r\n]+/g, ' ');
}

export interface LoaderConf {
  timeoutSeconds?: number;
}

/**
 * `default bootc-*`: the first of our entries in systemd-boot's order, i.e. the highest
 * `version` that has tries left. `editor no`: the command line cannot be edited at the menu.
 */
export function renderLoaderConf(conf: LoaderConf = {}): string {
  const timeout = conf.timeoutSeconds ?? DEFAULT_MENU_TIMEOUT_SECONDS;
  invariant(Number.isInteger(timeout) && timeout >= 0, `menu timeout must be a whole number of seconds: ${timeout}`);
  return [`default ${ENTRY_PREFIX}*`, `timeout ${timeout}`, 'editor no', ''].join('\n');
}

/**
 * The order systemd-boot 252 shows our entries in (first = default): entries with no tries
 * left last, then `version` descending. Used by status/rollback to say what boots next.
 */
export function bootOrder<T extends { name: EntryName; version: string }>(entries: readonly T[]): T[] {
  const exhausted = (e: T): number => (e.name.counter?.triesLeft === 0 ? 1 : 0);
  return [...entries].sort(
    (a, b) => exhausted(a) - exhausted(b) || b.version.localeCompare(a.version, 'en', { numeric: true }),
  );
}
