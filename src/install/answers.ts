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
import { answersRows, type AnswerableFlags, type AnswersSection, type AnswersSectionValues, type AnswerUser, type FinishAction, type InstallAnswers } from './options.js';

export type { AnswerUser, FinishAction, InstallAnswers } from './options.js';
export { checkHostname, checkPasswordHash, checkUserName } from './options.js';

const HINT =
  'an answers file has [image] source, [disk] with one of path, serial, wwn, model or size ("largest"/"smallest") and wipe, ' +
  'and [options] filesystem, root-size, kargs, root-ssh-authorized-keys, hostname, stateroot, user, user-password-hash, user-groups, finish ("poweroff"/"reboot") (the installer writes one with "Save answers")';

/** `systemd.hostname=` sets the host name at boot without touching the image's /etc. */
export const HOSTNAME_KARG = 'systemd.hostname';

/** One section of the file: its keys as the options table declares them. */
function sectionSchema<S extends AnswersSection>(section: S): z.ZodType<AnswersSectionValues<S>> {
  return z.strictObject(Object.fromEntries(answersRows(section).map((row) => [row.key, row.required ? row.schema : row.schema.optional()]))) as z.ZodType<AnswersSectionValues<S>>;
}

const answersSchema = z
  .object({
    image: sectionSchema('image').optional(),
    disk: sectionSchema('disk'),
    options: sectionSchema('options').optional(),
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
  if ((options.user === undefined) !== (options['user-password-hash'] === undefined)) {
    throw new UserError(`${file}: [options] user and user-password-hash go together`, { hint: HINT });
  }
  for (const row of answersRows('options')) {
    const value = (options as Record<string, unknown>)[row.key];
    const bad = row.check !== undefined && typeof value === 'string' ? row.check(value) : null;
    if (bad) throw new UserError(`${file}: ${bad}`, { hint: HINT });
  }
  const user: AnswerUser | undefined =
    options.user !== undefined && options['user-password-hash'] !== undefined
      ? { name: options.user, passwordHash: options['user-password-hash'], groups: options['user-groups'] ?? [] }
      : undefined;
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

const SECTION_NOTES: Partial<Record<AnswersSection, string>> = { disk: '# one of: path, serial, wwn, model, size = "largest" | "smallest"' };

function tomlValue(value: string | boolean | string[]): string {
  if (typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? `[${value.map(tomlString).join(', ')}]` : tomlString(value);
}

/** The file the installer saves, key by key from the options table; parseAnswers(renderAnswers(a)) gives `a` back. */
export function renderAnswers(a: InstallAnswers): string {
  const lines = ['# bootc install answers: replay with `bootc install to-disk --config FILE`'];
  for (const section of ['image', 'disk', 'options'] as const) {
    const keys = answersRows(section).flatMap((row) => {
      const value = row.get(a);
      return value === undefined ? [] : [`${row.key} = ${tomlValue(value)}`];
    });
    if (keys.length === 0) continue;
    lines.push('', `[${section}]`, ...(SECTION_NOTES[section] !== undefined ? [SECTION_NOTES[section]] : []), ...keys);
  }
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

/**
 * Flags given on the command line win over the answers; kernel arguments add up (the
 * answers' first). `device` is the disk the answers' selector matched.
 */
export function applyAnswers<T extends AnswerableFlags>(flags: T, answers: InstallAnswers, device: string): T {
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
export async function withAnswersFile<T extends AnswerableFlags>(flags: T, file: string): Promise<T & { answerUser?: AnswerUser; finish?: FinishAction }> {
  const answers = await loadAnswers(file);
  const user = { ...(answers.user !== undefined ? { answerUser: answers.user } : {}), ...(answers.finish !== undefined ? { finish: answers.finish } : {}) };
  if (flags.device !== undefined) return { ...applyAnswers(flags, answers, flags.device), ...user };
  const disks = await readDiskInventory(flags.sourceImgref ?? answers.source);
  const disk = await withContext(`Choosing the disk of ${file}`, async () => matchDisk(answers.disk, disks));
  return { ...applyAnswers(flags, answers, disk.path), ...user };
}
