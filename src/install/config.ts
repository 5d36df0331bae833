/**
 * Install configuration: `bootc/install/*.toml` fragments, merged as upstream bootc does.
 *
 *   search path  /usr/lib/bootc/install (from the image), then on the installing host
 *                /usr/local/lib/bootc/install, /etc/bootc/install, /run/bootc/install;
 *                a file name in a later directory replaces the same name in an earlier one;
 *                the remaining files are merged in name order, later wins
 *   merge        scalars overwrite, `kargs` and `karg-deletes` append
 *   skip         a fragment whose `match-architectures` lacks this machine's architecture
 *   strict       unknown keys are refused with the file and key named
 *   honoured     every key is applied or refused by name for each command that reads it
 *                (INSTALL_CONFIG_KEYS, checkInstallConfig); resolveInstallSettings is what
 *                the keys and the flags decide together (fs type, stateroot, root= and
 *                /boot specs, kargs)
 *
 * Parsers take strings (this file); loaders read files (install-config-files.ts).
 */
import { canonicalJson } from '../core/canonical-json.js';
import { parse as parseToml } from 'smol-toml';
import { UserError, invariant } from '../core/errors.js';
import type { DiskArch } from '../disk/gpt.js';
import type { RustArch } from '../boot/kargs.js';

export const INSTALL_CONFIG_IMAGE_DIR = 'usr/lib/bootc/install';
/** Host directories, lowest precedence first; the image's directory comes before all. */
export const INSTALL_CONFIG_HOST_DIRS = ['/usr/local/lib/bootc/install', '/etc/bootc/install', '/run/bootc/install'] as const;

export const ROOT_FS_TYPES = ['xfs', 'ext4', 'btrfs'] as const;
export type InstallFsType = (typeof ROOT_FS_TYPES)[number];
export const BLOCK_SETUPS = ['direct', 'tpm2-luks'] as const;
export type BlockSetup = (typeof BLOCK_SETUPS)[number];
/**
 * Upstream's names (grub, grub-cc, systemd, none) and ours: `hybrid` is systemd-boot for UEFI
 * plus GRUB for BIOS on one disk (bib's x86_64 disks boot both ways); `systemd` is UEFI-only
 * systemd-boot. Upstream's `grub` is GRUB under UEFI too, which we do not build: refused.
 */
export const BOOTLOADERS = ['grub', 'grub-cc', 'systemd', 'none', 'hybrid'] as const;
export type Bootloader = (typeof BOOTLOADERS)[number];
/** What the commands build: each accepts these values of --bootloader and the key. */
export const BUILT_BOOTLOADERS: Readonly<Record<InstallCommand, readonly Bootloader[]>> = {
  'build-disk': ['hybrid', 'systemd'],
  'to-disk': ['hybrid', 'systemd'],
  'to-filesystem': ['systemd'],
};

/** The merged `[install]` table, keys as upstream spells them (kebab-case). */
export interface InstallConfig {
  'root-fs-type'?: InstallFsType;
  filesystem?: { root?: { type?: InstallFsType } };
  block?: BlockSetup[];
  kargs?: string[];
  'karg-deletes'?: string[];
  'match-architectures'?: string[];
  ostree?: { 'bls-append-except-default'?: string };
  stateroot?: string;
  'root-mount-spec'?: string;
  'boot-mount-spec'?: string;
  bootupd?: { 'skip-boot-uuid'?: boolean };
  bootloader?: Bootloader;
  'discoverable-partitions'?: boolean;
  'enforce-container-sigpolicy'?: boolean;
}

export interface InstallConfigFile {
  /** Full path, for messages. */
  path: string;
  text: string;
}

/** `file` and the dotted key path are kept apart so messages can name both. */
type Checker = (value: unknown, file: string, key: string) => unknown;

const HINT = 'see bootc-install-config(5): the keys are root-fs-type, [install.filesystem.root] type, block, kargs, karg-deletes, match-architectures, stateroot, root-mount-spec, boot-mount-spec, bootloader, discoverable-partitions, enforce-container-sigpolicy, [install.ostree], [install.bootupd]';

function bad(file: string, key: string, what: string): never {
  throw new UserError(`${file}: \`${key}\` must be ${what}`, { hint: HINT });
}

const str: Checker = (v, file, key) => (typeof v === 'string' ? v : bad(file, key, 'a string'));
const bool: Checker = (v, file, key) => (typeof v === 'boolean' ? v : bad(file, key, 'true or false'));
const strArray: Checker = (v, file, key) =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? [...v] : bad(file, key, 'an array of strings');
const quoted = (choices: readonly string[]): string => choices.map((c) => `"${c}"`).join(', ');
const oneOf =
  (choices: readonly string[]): Checker =>
  (v, file, key) =>
    typeof v === 'string' && choices.includes(v) ? v : bad(file, key, `one of ${quoted(choices)}`);
const arrayOf =
  (choices: readonly string[]): Checker =>
  (v, file, key) =>
    Array.isArray(v) && v.every((x) => typeof x === 'string' && choices.includes(x)) ? [...v] : bad(file, key, `an array of ${quoted(choices)}`);

function table(keys: Record<string, Checker>): Checker {
  return (v, file, where) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Date) bad(file, where, 'a table');
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
      const check = keys[key];
      const path = `${where}.${key}`;
      if (!check) throw new UserError(`${file}: unknown key \`${path}\``, { hint: HINT });
      out[key] = check(value, file, path);
    }
    return out;
  };
}

/** The one settings table: every key upstream accepts and how it is checked. */
const installTable = table({
  'root-fs-type': oneOf(ROOT_FS_TYPES),
  filesystem: table({ root: table({ type: oneOf(ROOT_FS_TYPES) }) }),
  block: arrayOf(BLOCK_SETUPS),
  kargs: strArray,
  'karg-deletes': strArray,
  'match-architectures': strArray,
  ostree: table({ 'bls-append-except-default': str }),
  stateroot: str,
  'root-mount-spec': str,
  'boot-mount-spec': str,
  bootupd: table({ 'skip-boot-uuid': bool }),
  bootloader: oneOf(BOOTLOADERS),
  'discoverable-partitions': bool,
  'enforce-container-sigpolicy': bool,
});

/** One fragment; null when it has no `[install]` table (upstream ignores such files). */
export function parseInstallConfig(path: string, text: string): InstallConfig | null {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`${path} is not valid TOML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, {
      hint: 'fix the syntax; an install config starts with an [install] table',
    });
  }
  for (const key of Object.keys(doc)) {
    if (key !== 'install') throw new UserError(`${path}: unknown key \`${key}\``, { hint: 'an install config has one top-level table, [install]' });
  }
  if (doc['install'] === undefined) return null;
  return installTable(doc['install'], path, 'install') as InstallConfig;
}

/** Later fragments win for scalars; kargs and karg-deletes accumulate. */
export function mergeInstallConfig(base: InstallConfig, next: InstallConfig): InstallConfig {
  const merged: InstallConfig = { ...base };
  for (const [key, value] of Object.entries(next) as Array<[keyof InstallConfig, unknown]>) {
    if (key === 'kargs' || key === 'karg-deletes') {
      merged[key] = [...(base[key] ?? []), ...(value as string[])];
    } else if (key === 'filesystem') {
      const root = { ...base.filesystem?.root, ...(value as InstallConfig['filesystem'])?.root };
      merged.filesystem = { ...base.filesystem, ...(value as object), ...(Object.keys(root).length ? { root } : {}) };
    } else if (key === 'ostree' || key === 'bootupd') {
      (merged as Record<string, unknown>)[key] = { ...(base[key] as object | undefined), ...(value as object) };
    } else {
      (merged as Record<string, unknown>)[key] = value;
    }
  }
  return merged;
}

/**
 * The new `[install.filesystem.root] type` wins over the legacy `root-fs-type`; after this
 * both say the same, as upstream prints them.
 */
export function canonicalizeInstallConfig(config: InstallConfig): InstallConfig {
  const out: InstallConfig = { ...config };
  const rootType = config.filesystem?.root?.type;
  if (rootType !== undefined) {
    out['root-fs-type'] = rootType;
  } else if (config['root-fs-type'] !== undefined) {
    out.filesystem = { ...config.filesystem, root: { ...config.filesystem?.root, type: config['root-fs-type'] } };
  }
  return out;
}

/**
 * Which files apply, in order: a name in a later directory replaces the same name in an
 * earlier one, then all by name. `files` must be given lowest-precedence directory first.
 */
export function orderInstallConfigFiles(files: readonly InstallConfigFile[]): InstallConfigFile[] {
  const byName = new Map<string, InstallConfigFile>();
  for (const file of files) {
    const name = file.path.slice(file.path.lastIndexOf('/') + 1);
    if (!name.endsWith('.toml')) continue;
    byName.delete(name);
    byName.set(name, file);
  }
  return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, f]) => f);
}

/** Merged configuration of all files for `arch`; null when no fragment applies. */
export function resolveInstallConfig(files: readonly InstallConfigFile[], arch: RustArch): InstallConfig | null {
  let merged: InstallConfig | null = null;
  for (const file of orderInstallConfigFiles(files)) {
    const fragment = parseInstallConfig(file.path, file.text);
    if (fragment === null) continue;
    const archs = fragment['match-architectures'];
    if (archs !== undefined && !archs.includes(arch)) continue;
    merged = mergeInstallConfig(merged ?? {}, fragment);
  }
  return merged === null ? null : canonicalizeInstallConfig(merged);
}

/** The root filesystem to create: the flag, else the install config, else ext4 (this project's default). */
export function chooseRootFsType(flag: InstallFsType | undefined, config: InstallConfig | null): InstallFsType {
  return flag ?? config?.filesystem?.root?.type ?? config?.['root-fs-type'] ?? 'ext4';
}


/** The three commands that read an install config; each applies or refuses every key. */
export type InstallCommand = 'to-disk' | 'to-filesystem' | 'build-disk';

/**
 * What each command does with each key, for the refusals below, the docs and the table test.
 * `applied`: the key changes the result; `refused`: a value other than the default ends the
 * install before anything is written; `not-applicable`: the key concerns a step the command
 * leaves to the user (as upstream: block setup of a filesystem the user prepared).
 */
export const INSTALL_CONFIG_KEYS: Readonly<Record<string, Readonly<Record<InstallCommand, 'applied' | 'refused' | 'not-applicable'>>>> = {
  'root-fs-type': { 'to-disk': 'applied', 'to-filesystem': 'not-applicable', 'build-disk': 'applied' },
  'filesystem.root.type': { 'to-disk': 'applied', 'to-filesystem': 'not-applicable', 'build-disk': 'applied' },
  block: { 'to-disk': 'refused', 'to-filesystem': 'not-applicable', 'build-disk': 'refused' },
  kargs: { 'to-disk': 'applied', 'to-filesystem': 'applied', 'build-disk': 'applied' },
  'karg-deletes': { 'to-disk': 'applied', 'to-filesystem': 'applied', 'build-disk': 'applied' },
  'match-architectures': { 'to-disk': 'applied', 'to-filesystem': 'applied', 'build-disk': 'applied' },
  'ostree.bls-append-except-default': { 'to-disk': 'refused', 'to-filesystem': 'refused', 'build-disk': 'refused' },
  stateroot: { 'to-disk': 'applied', 'to-filesystem': 'applied', 'build-disk': 'applied' },
  'root-mount-spec': { 'to-disk': 'applied', 'to-filesystem': 'applied', 'build-disk': 'applied' },
  'boot-mount-spec': { 'to-disk': 'applied', 'to-filesystem': 'applied', 'build-disk': 'applied' },
  'bootupd.skip-boot-uuid': { 'to-disk': 'refused', 'to-filesystem': 'refused', 'build-disk': 'refused' },
  bootloader: { 'to-disk': 'applied', 'to-filesystem': 'refused', 'build-disk': 'applied' },
  'discoverable-partitions': { 'to-disk': 'applied', 'to-filesystem': 'applied', 'build-disk': 'applied' },
  'enforce-container-sigpolicy': { 'to-disk': 'applied', 'to-filesystem': 'applied', 'build-disk': 'applied' },
};

function refuse(key: string, value: unknown, why: string, hint: string): never {
  throw new UserError(`the install configuration sets \`${key} = ${JSON.stringify(value)}\`: ${why}`, { hint });
}

function refuseFlag(flag: string, why: string, hint: string): never {
  throw new UserError(`${flag}: ${why}`, { hint });
}

/** Upstream's flags that stand for an install-config key; each wins over its key. */
export interface InstallPolicyFlags {
  /** --block-setup (to-disk). */
  blockSetup?: BlockSetup;
  /** --bootloader. */
  bootloader?: Bootloader;
  /** --bootupd-skip-boot-uuid. */
  bootupdSkipBootUuid?: boolean;
  /** --enforce-container-sigpolicy. */
  enforceContainerSigpolicy?: boolean;
}

/**
 * Refuses, by key or flag, every setting this command cannot honour; values that mean what
 * we do anyway (bootloader "systemd", block ["direct", …], false flags) pass. Called right
 * after the configuration is loaded, before the disk or the filesystem is written.
 */
export function checkInstallConfig(config: InstallConfig | null, command: InstallCommand, flags: InstallPolicyFlags = {}): void {
  if (flags.blockSetup !== undefined && flags.blockSetup !== 'direct') {
    refuseFlag(`--block-setup ${flags.blockSetup}`, 'disk encryption is not implemented yet', 'leave --block-setup out (or pass direct), or set up LUKS yourself and install with `bootc install to-filesystem`');
  }
  const block = config?.block;
  if (flags.blockSetup === undefined && block !== undefined && command !== 'to-filesystem' && block[0] !== 'direct') {
    refuse('block', block, block.length === 0 ? 'no block setup is enabled' : `the default block setup would be ${block[0]}, and disk encryption is not implemented yet`, 'put "direct" first (block = ["direct"]), or set up LUKS yourself and install with `bootc install to-filesystem`');
  }
  if (flags.bootloader !== undefined) {
    const why = bootloaderRefusal(flags.bootloader, command);
    if (why) refuseFlag(`--bootloader ${flags.bootloader}`, why, bootloaderHint(command, '--bootloader'));
  }
  if (flags.bootloader === undefined && config?.bootloader !== undefined) {
    const why = bootloaderRefusal(config.bootloader, command);
    if (why) refuse('bootloader', config.bootloader, why, bootloaderHint(command, 'the key'));
  }
  const noBootupd = "it configures bootupd's GRUB, and this bootc installs systemd-boot, whose entries find the root by root= and bootc.deploy=";
  if (flags.bootupdSkipBootUuid === true) refuseFlag('--bootupd-skip-boot-uuid', noBootupd, 'leave --bootupd-skip-boot-uuid out');
  if (config?.bootupd?.['skip-boot-uuid'] === true) {
    refuse('[install.bootupd] skip-boot-uuid', true, noBootupd, 'leave [install.bootupd] out (or set skip-boot-uuid = false)');
  }
  const blsAppend = config?.ostree?.['bls-append-except-default'];
  if (blsAppend !== undefined) {
    refuse('[install.ostree] bls-append-except-default', blsAppend, 'extra arguments on the non-default boot entries are not implemented', 'leave it out; per-deployment kernel arguments come from kargs, kargs.d and --karg');
  }
}

/** Why `command` cannot build `bootloader`, or null when it can. */
function bootloaderRefusal(bootloader: Bootloader, command: InstallCommand): string | null {
  if (BUILT_BOOTLOADERS[command].includes(bootloader)) return null;
  switch (bootloader) {
    case 'grub':
      return 'this bootc boots UEFI through systemd-boot, never GRUB (GRUB only for BIOS, in hybrid disks)';
    case 'grub-cc':
    case 'none':
      return `this bootc does not build the bootloader setup "${bootloader}"`;
    default:
      return `${command} does not build "${bootloader}" disks yet`;
  }
}

const bootloaderHint = (command: InstallCommand, via: string): string =>
  `${via === 'the key' ? 'set bootloader to' : 'pass'} ${BUILT_BOOTLOADERS[command].map((b) => `"${b}"`).join(' or ')}, or leave it out`;

/**
 * The bootloader a disk gets: the choice, else hybrid on x86_64 where the command builds it
 * (bib's disks boot under BIOS and UEFI), else systemd. Only x86_64 has BIOS machines.
 */
export function chooseBootloader(choice: Bootloader | undefined, command: InstallCommand, arch: DiskArch): 'hybrid' | 'systemd' {
  const chosen = choice ?? (arch === 'x86_64' && BUILT_BOOTLOADERS[command].includes('hybrid') ? 'hybrid' : 'systemd');
  if (chosen === 'hybrid' && arch !== 'x86_64') {
    throw new UserError(`the bootloader "hybrid" adds GRUB for BIOS machines, which ${arch} does not have`, { hint: 'choose the bootloader "systemd" (the default there)' });
  }
  invariant(chosen === 'hybrid' || chosen === 'systemd', `bootloader ${chosen} passed the refusals`);
  return chosen;
}

/** `discoverable-partitions = true`: no root= on the command line; systemd-gpt-auto-generator finds the root by its GPT type. */
export function usesDiscoverablePartitions(config: InstallConfig | null): boolean {
  return config?.['discoverable-partitions'] === true;
}

/**
 * `root=` as the configuration asks: "" (leave it out) with discoverable partitions,
 * else the flag, else `root-mount-spec`; undefined keeps `root=UUID=<root fs>`.
 */
export function rootMountSpecOf(flag: string | undefined, config: InstallConfig | null): string | undefined {
  if (flag !== undefined) return flag;
  if (usesDiscoverablePartitions(config)) return '';
  return config?.['root-mount-spec'];
}

/** The flags that override install-config keys (absent: the key, else the default). */
export interface InstallSettingFlags extends InstallPolicyFlags {
  filesystem?: InstallFsType;
  stateroot?: string;
  rootMountSpec?: string;
  bootMountSpec?: string;
  kargDeletes?: readonly string[];
}

/** What the install config and the flags decide together, for one command. */
export interface InstallSettings {
  /** to-disk and build-disk create it; to-filesystem reports what it asked for. */
  rootFsType: InstallFsType;
  /** True when neither flag nor config named a type (ext4 is then our choice). */
  rootFsTypeDefaulted: boolean;
  stateroot: string;
  /** undefined: `root=UUID=<root fs>`; "": no root= (discoverable partitions). */
  rootMountSpec?: string;
  /** undefined: the ESP by UUID; "": no /boot line in fstab. */
  bootMountSpec?: string;
  installConfigKargs: string[];
  /** The config's karg-deletes, then --karg-delete. */
  kargDeletes: string[];
  /** The root partition must carry the DPS root type of the architecture. */
  discoverablePartitions: boolean;
  /** --enforce-container-sigpolicy, else the key: the image must be one the policy requires signed. */
  enforceContainerSigpolicy: boolean;
  /** --bootloader, else the key; absent: the command's default for the architecture (chooseBootloader). */
  bootloader?: Bootloader;
}

/** Refuses what `command` cannot honour (checkInstallConfig), then resolves the rest. */
export function resolveInstallSettings(config: InstallConfig | null, flags: InstallSettingFlags, command: InstallCommand): InstallSettings {
  checkInstallConfig(config, command, flags);
  const rootMountSpec = rootMountSpecOf(flags.rootMountSpec, config);
  const bootMountSpec = flags.bootMountSpec ?? config?.['boot-mount-spec'];
  return {
    rootFsType: chooseRootFsType(flags.filesystem, config),
    rootFsTypeDefaulted: flags.filesystem === undefined && config?.filesystem?.root?.type === undefined && config?.['root-fs-type'] === undefined,
    stateroot: flags.stateroot ?? config?.stateroot ?? 'default',
    ...(rootMountSpec !== undefined ? { rootMountSpec } : {}),
    ...(bootMountSpec !== undefined ? { bootMountSpec } : {}),
    installConfigKargs: [...(config?.kargs ?? [])],
    kargDeletes: [...(config?.['karg-deletes'] ?? []), ...(flags.kargDeletes ?? [])],
    discoverablePartitions: usesDiscoverablePartitions(config),
    enforceContainerSigpolicy: flags.enforceContainerSigpolicy ?? config?.['enforce-container-sigpolicy'] ?? false,
    ...((flags.bootloader ?? config?.bootloader) !== undefined ? { bootloader: flags.bootloader ?? config!.bootloader! } : {}),
  };
}

/**
 * `bootc install print-configuration`: canonical JSON (sorted keys, compact) of the merged
 * configuration; kernel arguments are left out unless `all`, as upstream does.
 */
export function renderPrintConfiguration(config: InstallConfig | null, all: boolean): string {
  const shown: InstallConfig = { ...(config ?? {}) };
  if (!all) {
    delete shown.kargs;
    delete shown['karg-deletes'];
  }
  return canonicalJson(shown) + '\n';
}
