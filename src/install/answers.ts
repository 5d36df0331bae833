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
 * A disk selector other than `path` is matched against the disk inventory
 * (src/disk/inventory.ts). The parts here are pure: parsing, rendering, and merging the
 * answers into the flags; `loadAnswers` and `withAnswersFile` are the thin loaders.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { UserError, withContext } from '../core/errors.js';
import { matchDisk, readDiskInventory, type DiskSelector } from '../disk/inventory.js';
import { ROOT_FS_TYPES, type InstallFsType } from './config.js';
import { isPasswordHash } from '../deploy/users.js';
import { parseRootSize } from './to-disk.js';

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
