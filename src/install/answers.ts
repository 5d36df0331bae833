/**
 * Install answers: everything the interactive installer asks, as a TOML file that
 * `bootc install to-disk --config answers.toml` replays unattended.
 *
 *   [image]   source (any transport), target (optional: the image to follow for updates);
 *             optional as a whole: an installer medium installs its own image without it
 *   [disk]    one of path, serial, wwn, model, size = "largest" | "smallest"; wipe
 *   [options] filesystem, root-size, kargs, root-ssh-authorized-keys, hostname, stateroot,
 *             finish = "poweroff" | "reboot" (what to do once installed; default: nothing)
 *
 * A disk selector other than `path` is matched against the disks `lsblk -J -b -O` lists,
 * leaving out disks that cannot be installed to (the running system, anything mounted,
 * the install medium). The parts here are pure: parsing, rendering, the disk inventory
 * from lsblk text, and matching; `readDiskInventory` is the thin loader.
 */
import { readFile, stat } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { run } from '../core/exec.js';
import { UserError, withContext } from '../core/errors.js';
import { formatSize } from '../disk/gpt.js';
import { checkInstallTarget, lsblkDeviceSchema, rootDeviceNumbers, walkDevices, type LsblkDevice } from './block-device.js';
import { ROOT_FS_TYPES, type InstallFsType } from './config.js';
import { isPasswordHash } from '../deploy/users.js';
import { parseRootSize } from './to-disk.js';

export type DiskSelector =
  | { by: 'path'; path: string }
  | { by: 'serial'; serial: string }
  | { by: 'wwn'; wwn: string }
  | { by: 'model'; model: string }
  | { by: 'size'; size: 'largest' | 'smallest' };

export type FinishAction = 'poweroff' | 'reboot';

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

export interface AnswerUser {
  name: string;
  /** crypt(3) hash, e.g. from `openssl passwd -6`; never a plain password in a saved file. */
  passwordHash: string;
  groups: string[];
}

const HINT =
  'an answers file has [image] source, [disk] with one of path, serial, wwn, model or size ("largest"/"smallest") and wipe, ' +
  'and [options] filesystem, root-size, kargs, root-ssh-authorized-keys, hostname, stateroot, user, user-password-hash, user-groups, finish ("poweroff"/"reboot") (the installer writes one with "Save answers")';

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

/** `systemd.hostname=` sets the host name at boot without touching the image's /etc. */
export const HOSTNAME_KARG = 'systemd.hostname';

const str = z.string().min(1);
const answersSchema = z
  .object({
    image: z.object({ source: str, target: str.optional() }).strict().optional(),
    disk: z
      .object({
        path: str.optional(),
        serial: str.optional(),
        wwn: str.optional(),
        model: str.optional(),
        size: z.enum(['largest', 'smallest']).optional(),
        wipe: z.boolean().optional(),
      })
      .strict(),
    options: z
      .object({
        filesystem: z.enum(ROOT_FS_TYPES).optional(),
        'root-size': str.optional(),
        kargs: z.array(str).optional(),
        'root-ssh-authorized-keys': str.optional(),
        hostname: str.optional(),
        stateroot: str.optional(),
        user: str.optional(),
        'user-password-hash': str.optional(),
        'user-groups': z.array(str).optional(),
        finish: z.enum(['poweroff', 'reboot']).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') return `unknown key ${issue.keys.map((k) => `\`${where ? where + '.' : ''}${k}\``).join(', ')}`;
  return `\`${where}\`: ${issue.message}`;
}

/** Parses and checks an answers file; `file` names it in messages. */
export function parseAnswers(file: string, text: string): InstallAnswers {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (err) {
    throw new UserError(`${file} is not valid TOML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, { hint: HINT });
  }
  const parsed = answersSchema.safeParse(doc);
  if (!parsed.success) throw new UserError(`${file}: ${describeIssue(parsed.error.issues[0]!)}`, { hint: HINT });
  const { image, disk, options = {} } = parsed.data;
  const selectors = (['path', 'serial', 'wwn', 'model', 'size'] as const).filter((k) => disk[k] !== undefined);
  if (selectors.length !== 1) {
    throw new UserError(`${file}: [disk] needs exactly one of path, serial, wwn, model, size (it has ${selectors.length === 0 ? 'none' : selectors.join(', ')})`, { hint: HINT });
  }
  const by = selectors[0]!;
  const selector = { by, [by]: disk[by] } as DiskSelector;
  if (options['root-size'] !== undefined) parseRootSize(options['root-size']);
  if (options.hostname !== undefined) {
    const bad = checkHostname(options.hostname);
    if (bad) throw new UserError(`${file}: ${bad}`, { hint: HINT });
  }
  let user: AnswerUser | undefined;
  if (options.user !== undefined || options['user-password-hash'] !== undefined) {
    if (options.user === undefined || options['user-password-hash'] === undefined) {
      throw new UserError(`${file}: [options] user and user-password-hash go together`, { hint: HINT });
    }
    const bad = checkUserName(options.user) ?? checkPasswordHash(options['user-password-hash']);
    if (bad) throw new UserError(`${file}: ${bad}`, { hint: HINT });
    user = { name: options.user, passwordHash: options['user-password-hash'], groups: options['user-groups'] ?? [] };
  }
  return {
    ...(image !== undefined ? { source: image.source } : {}),
    ...(image?.target !== undefined ? { target: image.target } : {}),
    disk: selector,
    wipe: disk.wipe ?? false,
    ...(options.filesystem !== undefined ? { filesystem: options.filesystem } : {}),
    ...(options['root-size'] !== undefined ? { rootSize: options['root-size'] } : {}),
    kargs: options.kargs ?? [],
    ...(options['root-ssh-authorized-keys'] !== undefined ? { rootSshAuthorizedKeys: options['root-ssh-authorized-keys'] } : {}),
    ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
    ...(options.stateroot !== undefined ? { stateroot: options.stateroot } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(options.finish !== undefined ? { finish: options.finish } : {}),
  };
}

const tomlString = (s: string): string => JSON.stringify(s);

/** The file the installer saves; parseAnswers(renderAnswers(a)) gives `a` back. */
export function renderAnswers(a: InstallAnswers): string {
  const lines = ['# bootc install answers: replay with `bootc install to-disk --config FILE`'];
  if (a.source !== undefined) {
    lines.push('', '[image]', `source = ${tomlString(a.source)}`);
    if (a.target !== undefined) lines.push(`target = ${tomlString(a.target)}`);
  }
  lines.push('', '[disk]', '# one of: path, serial, wwn, model, size = "largest" | "smallest"');
  const d = a.disk;
  const value = d.by === 'path' ? d.path : d.by === 'serial' ? d.serial : d.by === 'wwn' ? d.wwn : d.by === 'model' ? d.model : d.size;
  lines.push(`${d.by} = ${tomlString(value)}`, `wipe = ${a.wipe}`, '', '[options]');
  if (a.filesystem !== undefined) lines.push(`filesystem = ${tomlString(a.filesystem)}`);
  if (a.rootSize !== undefined) lines.push(`root-size = ${tomlString(a.rootSize)}`);
  lines.push(`kargs = [${a.kargs.map(tomlString).join(', ')}]`);
  if (a.rootSshAuthorizedKeys !== undefined) lines.push(`root-ssh-authorized-keys = ${tomlString(a.rootSshAuthorizedKeys)}`);
  if (a.hostname !== undefined) lines.push(`hostname = ${tomlString(a.hostname)}`);
  if (a.stateroot !== undefined) lines.push(`stateroot = ${tomlString(a.stateroot)}`);
  if (a.user !== undefined) {
    lines.push(`user = ${tomlString(a.user.name)}`, `user-password-hash = ${tomlString(a.user.passwordHash)}`);
    if (a.user.groups.length > 0) lines.push(`user-groups = [${a.user.groups.map(tomlString).join(', ')}]`);
  }
  if (a.finish !== undefined) lines.push(`finish = ${tomlString(a.finish)}`);
  return lines.join('\n') + '\n';
}

/** The kernel arguments an install gets from the answers: the host name rides on one. */
export function answerKargs(a: Pick<InstallAnswers, 'kargs' | 'hostname'>): string[] {
  return [...a.kargs, ...(a.hostname !== undefined ? [`${HOSTNAME_KARG}=${a.hostname}`] : [])];
}

// ---- disk inventory -------------------------------------------------------------------

export interface PartitionSummary {
  path: string;
  sizeBytes: number;
  fstype: string | null;
  label: string | null;
  mountpoints: string[];
}

export interface DiskCandidate {
  path: string;
  sizeBytes: number;
  model: string | null;
  serial: string | null;
  wwn: string | null;
  transport: string | null;
  /** The disk's own signature (a filesystem directly on it, or the partition table type). */
  pttype: string | null;
  fstype: string | null;
  /** Where the whole disk itself is mounted (a filesystem without a partition table). */
  mountpoints: string[];
  partitions: PartitionSummary[];
  /** Why it cannot be installed to; null when it can. */
  refusal: string | null;
}

/** Optical drives are listed too (an installer medium is one), always refused. */
const WHOLE_DISK_TYPES = new Set(['disk', 'loop', 'rom']);
const clean = (s: string | null | undefined): string | null => (s === null || s === undefined || s.trim() === '' ? null : s.trim());

/**
 * Every whole disk of `lsblk -J -b -O` (no device argument), each with the reason it is
 * refused: the checks of `install to-disk --wipe` (running root, LVM/RAID/LUKS, mounted),
 * plus holding the install medium (`mediumDevices`: maj:min of the filesystems the image
 * is read from). Empty devices (size 0: unused loop and zram slots) are left out.
 */
export function parseDiskInventory(lsblkText: string, runningRoot: string | null, mediumDevices: readonly string[] = []): DiskCandidate[] {
  let doc: unknown;
  try {
    doc = JSON.parse(lsblkText);
  } catch {
    throw new UserError('lsblk printed something that is not JSON', { hint: 'check util-linux (lsblk >= 2.33 has -J)' });
  }
  const parsed = z.object({ blockdevices: z.array(lsblkDeviceSchema) }).safeParse(doc);
  if (!parsed.success) throw new UserError('lsblk output has no block device list', { hint: 'check util-linux (lsblk >= 2.33 has -J -O)' });
  const disks: DiskCandidate[] = [];
  for (const dev of parsed.data.blockdevices) {
    if (!WHOLE_DISK_TYPES.has(dev.type) || dev.size === 0) continue;
    const all = [...walkDevices(dev)];
    let refusal: string | null = null;
    const holdsMedium = all.some((d) => mediumDevices.includes(d['maj:min']));
    if (dev.type === 'rom') {
      refusal = holdsMedium ? `${dev.path} holds the install medium (the image is read from it)` : `${dev.path} is an optical drive: it cannot be installed to`;
    } else {
      try {
        checkInstallTarget({ device: dev, probe: {}, runningRoot }, true);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        refusal = err.message;
      }
    }
    if (refusal === null && holdsMedium) refusal = `${dev.path} holds the install medium (the image is read from it)`;
    disks.push({
      path: dev.path,
      sizeBytes: dev.size,
      model: clean(dev.model),
      serial: clean(dev.serial),
      wwn: clean(dev.wwn),
      transport: clean(dev.tran),
      pttype: clean(dev.pttype),
      fstype: clean(dev.fstype),
      mountpoints: (dev.mountpoints ?? []).filter((m): m is string => !!m),
      partitions: all
        .filter((d) => d !== dev)
        .map((d) => ({
          path: d.path,
          sizeBytes: d.size,
          fstype: clean(d.fstype),
          label: clean(d.label),
          mountpoints: (d.mountpoints ?? []).filter((m): m is string => !!m),
        })),
      refusal,
    });
  }
  return disks;
}

export function describeSelector(s: DiskSelector): string {
  return s.by === 'size' ? `the ${s.size} disk` : `${s.by} "${s.by === 'path' ? s.path : s.by === 'serial' ? s.serial : s.by === 'wwn' ? s.wwn : s.model}"`;
}

const listDisks = (disks: readonly DiskCandidate[]): string =>
  disks.length === 0 ? 'no disks' : disks.map((d) => `${d.path} (${formatSize(d.sizeBytes)}${d.model ? `, ${d.model}` : ''}${d.serial ? `, serial ${d.serial}` : ''})`).join(', ');

/**
 * The one usable disk `selector` names. Refused disks never match; a selector matching two
 * disks (same model, equal sizes) is refused rather than guessed.
 */
export function matchDisk(selector: DiskSelector, disks: readonly DiskCandidate[]): DiskCandidate {
  const usable = disks.filter((d) => d.refusal === null);
  if (selector.by === 'path') {
    const found = disks.find((d) => d.path === selector.path);
    if (found?.refusal) throw new UserError(`cannot install to ${found.path}: ${found.refusal}`, { hint: 'choose another disk in the answers file' });
    if (found) return found;
    throw new UserError(`no disk ${selector.path}`, { hint: `usable disks: ${listDisks(usable)}` });
  }
  let matches: DiskCandidate[];
  if (selector.by === 'size') {
    if (usable.length === 0) throw new UserError(`no disk matches ${describeSelector(selector)}: every disk is in use or holds the install medium`, { hint: 'attach an unused disk' });
    const sizes = usable.map((d) => d.sizeBytes);
    const want = selector.size === 'largest' ? Math.max(...sizes) : Math.min(...sizes);
    matches = usable.filter((d) => d.sizeBytes === want);
  } else {
    const field = selector.by;
    const wanted = selector.by === 'serial' ? selector.serial : selector.by === 'wwn' ? selector.wwn : selector.model;
    matches = usable.filter((d) => d[field] === wanted);
  }
  if (matches.length === 0) {
    throw new UserError(`no usable disk matches ${describeSelector(selector)}`, { hint: `usable disks: ${listDisks(usable)}` });
  }
  if (matches.length > 1) {
    throw new UserError(`${matches.length} disks match ${describeSelector(selector)}: ${listDisks(matches)}`, { hint: 'select the disk by serial, wwn or path instead' });
  }
  return matches[0]!;
}

/** The strongest identifier of a disk for a saved answers file: WWN, else serial, else path. */
export function selectorFor(disk: DiskCandidate): DiskSelector {
  if (disk.wwn) return { by: 'wwn', wwn: disk.wwn };
  if (disk.serial) return { by: 'serial', serial: disk.serial };
  return { by: 'path', path: disk.path };
}

/** The file or directory an image reference reads from, for local transports. */
export function localImagePath(source: string): string | null {
  const m = /^(oci|oci-archive|docker-archive):([^:]+)/.exec(source);
  return m ? m[2]! : null;
}

/** Loader: lsblk of all disks, the running root, and the disk the image is read from. */
export async function readDiskInventory(imageSource?: string): Promise<DiskCandidate[]> {
  return withContext('Listing disks', async () => {
    const lsblk = await run({ description: 'Listing block devices', argv: ['lsblk', '-J', '-b', '-O'] });
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    const medium: string[] = [];
    const local = imageSource !== undefined ? localImagePath(imageSource) : null;
    if (local !== null) {
      const st = await stat(local).catch(() => null);
      // st.dev packs major:minor as the kernel's new_encode_dev does.
      if (st) medium.push(`${(st.dev >> 8) & 0xfff}:${(st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)}`);
    }
    return parseDiskInventory(lsblk.stdout, rootDeviceNumbers(mountinfo), medium);
  });
}

/** Loader: an answers file. */
export async function loadAnswers(file: string): Promise<InstallAnswers> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new UserError(`cannot read the answers file ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, {
      hint: 'give the file the interactive installer saved (`bootc install`, "Save answers")',
    });
  });
  return parseAnswers(file, text);
}

// ---- replay: `bootc install to-disk --config answers.toml` -----------------------------

/** The to-disk flags an answers file can fill in. */
export interface ToDiskFlags {
  device?: string;
  sourceImgref?: string;
  targetImgref?: string;
  wipe: boolean;
  filesystem?: InstallFsType;
  rootSize?: string;
  karg: string[];
  rootSshAuthorizedKeys?: string;
  stateroot?: string;
}

/**
 * Flags given on the command line win over the answers; kernel arguments add up (the
 * answers' first). `device` is the disk the answers' selector matched.
 */
export function applyAnswers<T extends ToDiskFlags>(flags: T, answers: InstallAnswers, device: string): T {
  return {
    ...flags,
    device: flags.device ?? device,
    sourceImgref: flags.sourceImgref ?? answers.source,
    ...(flags.targetImgref === undefined && answers.target !== undefined ? { targetImgref: answers.target } : {}),
    wipe: flags.wipe || answers.wipe,
    ...(flags.filesystem === undefined && answers.filesystem !== undefined ? { filesystem: answers.filesystem } : {}),
    ...(flags.rootSize === undefined && answers.rootSize !== undefined ? { rootSize: answers.rootSize } : {}),
    karg: [...answerKargs(answers), ...flags.karg],
    ...(flags.rootSshAuthorizedKeys === undefined && answers.rootSshAuthorizedKeys !== undefined ? { rootSshAuthorizedKeys: answers.rootSshAuthorizedKeys } : {}),
    ...(flags.stateroot === undefined && answers.stateroot !== undefined ? { stateroot: answers.stateroot } : {}),
  };
}

/** Loader for replay: the answers file, and the disk its selector names unless DEVICE was given. */
export async function withAnswersFile<T extends ToDiskFlags>(flags: T, file: string): Promise<T & { answerUser?: AnswerUser; finish?: FinishAction }> {
  const answers = await loadAnswers(file);
  const user = { ...(answers.user !== undefined ? { answerUser: answers.user } : {}), ...(answers.finish !== undefined ? { finish: answers.finish } : {}) };
  if (flags.device !== undefined) return { ...applyAnswers(flags, answers, flags.device), ...user };
  const disks = await readDiskInventory(flags.sourceImgref ?? answers.source);
  const disk = await withContext(`Choosing the disk of ${file}`, async () => matchDisk(answers.disk, disks));
  return { ...applyAnswers(flags, answers, disk.path), ...user };
}
