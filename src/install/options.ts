/**
 * The install options table: each option of an install once, with every shape it takes.
 *
 *   flag      the yargs option of `install to-disk` / `install to-filesystem` (the row's
 *             name is the flag's; `commands` says which take it), with its type and help
 *   answers   the key of the answers file (src/install/answers.ts) and its schema; `get`
 *             reads it back from the answers for the renderer
 *   tui       the field of the interactive installer's options screen
 *   check     what a value must satisfy, wherever it comes from (a message, or a throw)
 *
 * The yargs options, the answers schema and renderer and the installer's fields are all
 * derived from here, as mkosi's settings table drives its CLI, its config and its docs; a
 * row names only the shapes the option has.
 */
import type { InferredOptionType, Options } from 'yargs';
import { z } from 'zod';
import type { DiskSelector } from '../disk/inventory.js';
import { isPasswordHash } from '../deploy/users.js';
import { ROOT_FS_TYPES, type InstallFsType } from './config.js';
import { UserError } from '../core/errors.js';
import { GiB, MiB } from '../disk/gpt.js';

export type FinishAction = 'poweroff' | 'reboot';

export interface AnswerUser {
  name: string;
  /** crypt(3) hash, e.g. from `openssl passwd -6`; never a plain password in a saved file. */
  passwordHash: string;
  groups: string[];
}

export interface InstallAnswers {
  /** Absent: the image is given otherwise (--source-imgref, or the medium's own). */
  source?: string;
  target?: string;
  disk: DiskSelector;
  wipe: boolean;
  filesystem?: InstallFsType;
  rootSize?: string;
  kargs: string[];
  rootSshAuthorizedKeys?: string;
  hostname?: string;
  stateroot?: string;
  /** A login account added to the installed system. */
  user?: AnswerUser;
  /** Once installed: power off or reboot (unattended media); absent: nothing. */
  finish?: FinishAction;
}

/** A login name useradd accepts on Debian and Fedora alike. */
export function checkUserName(name: string): string | null {
  return /^[a-z_][a-z0-9_-]{0,31}$/.test(name) ? null : `"${name}" is not a valid user name (lower-case letters, digits, "_" and "-", starting with a letter or "_", at most 32)`;
}

export function checkPasswordHash(hash: string): string | null {
  return isPasswordHash(hash) ? null : 'the password must be given as a crypt(3) hash ("$6$..." or "$y$..."), e.g. from `openssl passwd -6`';
}

/** RFC 1123 host name: labels of letters, digits and inner hyphens. */
const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

export function checkHostname(name: string): string | null {
  return HOSTNAME.test(name) ? null : `"${name}" is not a valid host name (letters, digits and hyphens, dot-separated, at most 253 characters)`;
}

/** Parses `--root-size`: a number with an optional M, G or T suffix; MiB when bare, as upstream. */
export function parseRootSize(text: string): number {
  const m = /^(\d+)([MGT])?$/i.exec(text.trim());
  if (!m) {
    throw new UserError(`invalid --root-size "${text}"`, { hint: 'write a size like 20G, 512M or 1T (a bare number is MiB)' });
  }
  const unit = { M: MiB, G: GiB, T: 1024 * GiB }[(m[2] ?? 'M').toUpperCase() as 'M' | 'G' | 'T'];
  return Number(m[1]) * unit;
}

/** `--root-size`: parseRootSize says what is wrong (and how to write it) by throwing. */
function checkRootSize(text: string): null {
  parseRootSize(text);
  return null;
}

/**
 * A flag given once per value, as upstream's clap flags are: `--karg a --karg b`. Exactly
 * one value each (nargs 1), so `--karg quiet /mnt/target` leaves the positional alone.
 */
export function repeatable(describe: string): RepeatableFlag<string>;
export function repeatable<const V extends string>(describe: string, choices: readonly V[]): RepeatableFlag<V> & { choices: readonly V[] };
export function repeatable(describe: string, choices?: readonly string[]): RepeatableFlag<string> {
  return { type: 'string', array: true, nargs: 1, requiresArg: true, default: [], describe, ...(choices ? { choices } : {}) };
}

interface RepeatableFlag<V extends string> {
  type: 'string';
  array: true;
  nargs: 1;
  requiresArg: true;
  default: V[];
  describe: string;
}

export type InstallVerb = 'to-disk' | 'to-filesystem';
export type AnswersSection = 'image' | 'disk' | 'options';
type AnswerValue = string | boolean | string[];

interface InstallOptionRow {
  /** The install verbs that take the row as a flag; none: the answers file or the installer only. */
  commands: readonly InstallVerb[];
  flag?: Options;
  answers?: {
    section: AnswersSection;
    key: string;
    schema: z.ZodType<AnswerValue>;
    /** Needed whenever its section is there. */
    required?: true;
    get: (a: InstallAnswers) => AnswerValue | undefined;
  };
  tui?: { field: string; label: string; placeholder?: string };
  check?: (value: string) => string | null;
}

const SHARED = ['to-disk', 'to-filesystem'] as const;
const TO_DISK = ['to-disk'] as const;
const TO_FILESYSTEM = ['to-filesystem'] as const;
const NO_FLAG = [] as const;

const text = z.string().min(1);
/** The answers' disk: the one selector it was chosen by (path, serial, wwn, model or size). */
function selectorValue(d: DiskSelector): string {
  return d.by === 'path' ? d.path : d.by === 'serial' ? d.serial : d.by === 'wwn' ? d.wwn : d.by === 'model' ? d.model : d.size;
}
const diskSelector = (by: DiskSelector['by']) => (a: InstallAnswers) => (a.disk.by === by ? selectorValue(a.disk) : undefined);

/**
 * In the order of the installer's fields and the answers file's keys; --help lists the flags
 * both installs take first, each verb's own after them, each group in this order.
 */
export const INSTALL_OPTIONS = {
  'source-imgref': {
    commands: SHARED,
    flag: { type: 'string', describe: 'The image to install, any transport (registry, oci:, oci-archive:, docker-archive:, containers-storage:)' },
    answers: { section: 'image', key: 'source', schema: text, required: true, get: (a) => a.source },
  },
  'target-imgref': {
    commands: SHARED,
    flag: { type: 'string', describe: 'The image the installed system follows for updates (default: the source image)' },
    answers: { section: 'image', key: 'target', schema: text, get: (a) => a.target },
  },
  'target-transport': { commands: SHARED, flag: { type: 'string', default: 'registry', describe: 'Transport of --target-imgref' } },
  config: { commands: TO_DISK, flag: { type: 'string', describe: 'Answers file saved by the interactive installer (TOML); flags given as well win' } },
  // The disk: DEVICE on the command line (a positional, not a flag), one selector in the answers.
  device: { commands: NO_FLAG, answers: { section: 'disk', key: 'path', schema: text, get: diskSelector('path') } },
  'disk-serial': { commands: NO_FLAG, answers: { section: 'disk', key: 'serial', schema: text, get: diskSelector('serial') } },
  'disk-wwn': { commands: NO_FLAG, answers: { section: 'disk', key: 'wwn', schema: text, get: diskSelector('wwn') } },
  'disk-model': { commands: NO_FLAG, answers: { section: 'disk', key: 'model', schema: text, get: diskSelector('model') } },
  'disk-size': { commands: NO_FLAG, answers: { section: 'disk', key: 'size', schema: z.enum(['largest', 'smallest']), get: diskSelector('size') } },
  wipe: {
    commands: TO_DISK,
    flag: { type: 'boolean', default: false, describe: 'Erase existing partitions and signatures on the disk' },
    answers: { section: 'disk', key: 'wipe', schema: z.boolean(), get: (a) => a.wipe },
  },
  filesystem: {
    commands: TO_DISK,
    flag: { choices: ['xfs', 'ext4', 'btrfs'], describe: 'Root filesystem (default: the image\'s install config, else ext4)' },
    answers: { section: 'options', key: 'filesystem', schema: z.enum(ROOT_FS_TYPES), get: (a) => a.filesystem },
    tui: { field: 'filesystem', label: 'Root filesystem' },
  },
  'block-setup': {
    commands: TO_DISK,
    flag: { choices: ['direct', 'tpm2-luks'], describe: 'Block setup of the root: direct (the default); tpm2-luks is refused until encryption lands' },
  },
  'root-size': {
    commands: TO_DISK,
    flag: { type: 'string', describe: 'Root partition size, e.g. 20G (bare number: MiB; default: the rest of the disk)' },
    answers: { section: 'options', key: 'root-size', schema: text, get: (a) => a.rootSize },
    tui: { field: 'rootSize', label: 'Root size', placeholder: 'rest of the disk (or e.g. 20G)' },
    check: checkRootSize,
  },
  'via-loopback': {
    commands: TO_DISK,
    flag: { type: 'boolean', default: false, describe: 'DEVICE is a disk image file: attach it to a loop device (implies --generic-image)' },
  },
  karg: {
    commands: SHARED,
    flag: repeatable('Kernel argument to add (install adds no console arguments of its own); repeat for several'),
    answers: { section: 'options', key: 'kargs', schema: z.array(text), get: (a) => a.kargs },
    tui: { field: 'kargs', label: 'Kernel arguments', placeholder: 'none added' },
  },
  'karg-delete': { commands: SHARED, flag: repeatable('Kernel argument to remove (key or key=value); repeat for several') },
  uki: { commands: SHARED, flag: { type: 'boolean', default: false, describe: 'Boot a unified kernel image in EFI/Linux/ (automatic when the image ships one)' } },
  'sign-key': { commands: SHARED, flag: { type: 'string', describe: 'Secure Boot: PEM private key to sign the UKI and systemd-boot with (sbsign)' } },
  'sign-cert': { commands: SHARED, flag: { type: 'string', describe: 'Secure Boot: PEM certificate matching --sign-key' } },
  // Only the installer asks for a host name and a user (and its answers file keeps them).
  hostname: {
    commands: NO_FLAG,
    answers: { section: 'options', key: 'hostname', schema: text, get: (a) => a.hostname },
    tui: { field: 'hostname', label: 'Host name', placeholder: 'the image\'s' },
    check: checkHostname,
  },
  'root-ssh-authorized-keys': {
    commands: SHARED,
    flag: { type: 'string', describe: 'authorized_keys file for root, installed through tmpfiles.d' },
    answers: { section: 'options', key: 'root-ssh-authorized-keys', schema: text, get: (a) => a.rootSshAuthorizedKeys },
    tui: { field: 'sshKeyFile', label: 'Root SSH keys file', placeholder: 'none (e.g. /root/.ssh/id_ed25519.pub)' },
  },
  stateroot: {
    commands: SHARED,
    flag: { type: 'string', describe: 'Stateroot name (default: install config, else "default")' },
    answers: { section: 'options', key: 'stateroot', schema: text, get: (a) => a.stateroot },
  },
  user: {
    commands: NO_FLAG,
    answers: { section: 'options', key: 'user', schema: text, get: (a) => a.user?.name },
    tui: { field: 'userName', label: 'Add user', placeholder: 'none (e.g. admin)' },
    check: checkUserName,
  },
  'user-password-hash': {
    commands: NO_FLAG,
    answers: { section: 'options', key: 'user-password-hash', schema: text, get: (a) => a.user?.passwordHash },
    tui: { field: 'userPasswordHash', label: 'User password hash', placeholder: 'crypt(3) hash: openssl passwd -6' },
    check: checkPasswordHash,
  },
  'user-groups': {
    commands: NO_FLAG,
    answers: { section: 'options', key: 'user-groups', schema: z.array(text), get: (a) => (a.user !== undefined && a.user.groups.length > 0 ? a.user.groups : undefined) },
  },
  finish: { commands: NO_FLAG, answers: { section: 'options', key: 'finish', schema: z.enum(['poweroff', 'reboot']), get: (a) => a.finish } },
  store: { commands: SHARED, flag: { type: 'string', default: '/var/cache/bootc/store', describe: 'Blob store for pulled images, kept between runs' } },
  platform: { commands: SHARED, flag: { type: 'string', describe: 'Platform to choose from a multi-arch image (os/arch[/variant])' } },
  bootloader: {
    commands: SHARED,
    flag: {
      choices: ['grub', 'grub-cc', 'systemd', 'none', 'hybrid'],
      describe: 'hybrid: systemd-boot for UEFI and GRUB for BIOS (to-disk\'s default on x86_64 without a UKI); systemd: UEFI only (to-filesystem builds only this); the others are refused',
    },
  },
  'bootupd-skip-boot-uuid': { commands: SHARED, flag: { type: 'boolean', describe: 'bootupd/GRUB static configs: refused (no bootupd here)' } },
  'enforce-container-sigpolicy': {
    commands: SHARED,
    flag: { type: 'boolean', describe: 'Refuse the image unless the signature policy (containers-policy.json) requires it to be signed' },
  },
  'signature-policy': { commands: SHARED, flag: { type: 'string', requiresArg: true, describe: 'Signature policy file to use instead of /etc/containers/policy.json' } },
  'generic-image': {
    commands: SHARED,
    flag: {
      type: 'boolean',
      default: false,
      describe: 'A disk for any machine. Always in effect here: bootc never writes firmware boot variables, so every disk boots through the removable-media path (EFI/BOOT/BOOTX64.EFI)',
    },
  },
  quiet: { commands: SHARED, flag: { type: 'boolean', default: false, describe: 'No progress output' } },
  'progress-fd': { commands: SHARED, flag: { type: 'number', describe: 'Write progress as JSON lines to this file descriptor' } },
  'root-mount-spec': {
    commands: TO_FILESYSTEM,
    flag: { type: 'string', describe: 'How the root is found at boot, e.g. LABEL=root (default: UUID of the filesystem; "" omits root=)' },
  },
  'boot-mount-spec': { commands: TO_FILESYSTEM, flag: { type: 'string', describe: 'fstab source of /boot (the ESP) (default: its UUID; "" omits the line)' } },
  replace: { commands: TO_FILESYSTEM, flag: { choices: ['wipe', 'alongside'], describe: 'Root is not empty: erase it (wipe) or keep its files (alongside)' } },
  esp: { commands: TO_FILESYSTEM, flag: { type: 'string', describe: 'The EFI system partition (default: the one on the disk holding ROOT_PATH)' } },
  'skip-finalize': { commands: TO_FILESYSTEM, flag: { type: 'boolean', default: false, describe: 'Leave the filesystem writable (no fstrim, no read-only remount)' } },
} as const satisfies Record<string, InstallOptionRow>;

type Table = typeof INSTALL_OPTIONS;
export type InstallOptionName = keyof Table;

/** The yargs options of one install verb, typed as declared (the verb's argv is inferred from them). */
export type InstallFlags<V extends InstallVerb> = {
  -readonly [K in InstallOptionName as Table[K] extends { commands: readonly (infer C)[]; flag: Options } ? (V extends C ? K : never) : never]: Table[K] extends { flag: infer F } ? F : never;
};

const rows = (): Array<[InstallOptionName, InstallOptionRow]> => Object.entries(INSTALL_OPTIONS) as Array<[InstallOptionName, InstallOptionRow]>;

export function installFlags<V extends InstallVerb>(verb: V): InstallFlags<V> {
  const flags = rows().filter(([, row]) => row.flag !== undefined && row.commands.includes(verb));
  const shared = flags.filter(([, row]) => row.commands.length > 1);
  const own = flags.filter(([, row]) => row.commands.length === 1);
  return Object.fromEntries([...shared, ...own].map(([name, row]) => [name, row.flag])) as InstallFlags<V>;
}

/** The answers file's keys of one section, in the table's order, each with its row. */
export function answersRows(section: AnswersSection): Array<{ name: InstallOptionName } & NonNullable<InstallOptionRow['answers']> & Pick<InstallOptionRow, 'check'>> {
  return rows().flatMap(([name, row]) => (row.answers?.section === section ? [{ name, ...row.answers, ...(row.check ? { check: row.check } : {}) }] : []));
}

/** The installer's options screen: its fields, in the table's order. */
export type InstallerField = { [K in InstallOptionName]: Table[K] extends { tui: { field: infer F } } ? F : never }[InstallOptionName];

export function installerFields(): Array<{ name: InstallOptionName; field: InstallerField; label: string; placeholder?: string; check?: (value: string) => string | null }> {
  return rows().flatMap(([name, row]) =>
    row.tui !== undefined ? [{ name, field: row.tui.field as InstallerField, label: row.tui.label, ...(row.tui.placeholder !== undefined ? { placeholder: row.tui.placeholder } : {}), ...(row.check ? { check: row.check } : {}) }] : [],
  );
}

/** `root-size` → `rootSize`: the name yargs also gives a flag, and the one code reads. */
type CamelCaseKey<S> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCaseKey<Tail>>}` : S;

/** The values an install verb's flags parse to, by their camelCase names (as its code reads them). */
export type InstallArgs<V extends InstallVerb> = {
  [K in keyof InstallFlags<V> as CamelCaseKey<K>]: InstallFlags<V>[K] extends infer O extends Options ? InferredOptionType<O> : never;
};

/** The to-disk flags an answers file can fill in: the rows with both shapes (and DEVICE, the disk). */
export type AnswerableFlags = Pick<
  InstallArgs<'to-disk'>,
  CamelCaseKey<{ [K in InstallOptionName]: Table[K] extends { flag: Options; answers: object } ? K : never }[InstallOptionName]>
> & { device?: string };

/** What one section of an answers file holds once checked against the rows' schemas. */
export type AnswersSectionValues<S extends AnswersSection> = {
  [K in InstallOptionName as Table[K] extends { answers: { section: S; key: infer N extends string } } ? N : never]?: Table[K] extends { answers: { schema: infer Z extends z.ZodType } }
    ? z.output<Z>
    : never;
};
