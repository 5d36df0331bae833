/**
 * Adding users to a deployment's /etc: bootc-image-builder's `[[customizations.user]]`, and
 * the installer's answers. addUser is the pure text edit of passwd, shadow and group (tested
 * without root); addUsers applies it to a deployment before it is finalised: the files
 * written durably with the owner and mode the image gave them, each home under the
 * stateroot's /var, an SSH key in it when given.
 */
import { chmod, chown, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { writeFileAtomic } from '../core/durable-file.js';

export interface AccountFiles {
  passwd: string;
  shadow: string;
  group: string;
}

export interface NewUser {
  name: string;
  /** A crypt(3) hash ("$6$…"); undefined locks password login (SSH keys still work). */
  passwordHash?: string;
  groups?: string[];
  uid?: number;
  gid?: number;
  home?: string;
  shell?: string;
}

export interface AddedUser {
  files: AccountFiles;
  uid: number;
  gid: number;
  home: string;
}

/** Regular users start here on Debian and Fedora alike (login.defs UID_MIN). */
const FIRST_REGULAR_ID = 1000;
/** Days since the epoch, as shadow's "last password change" field counts. */
const DAY_MS = 86_400_000;

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

function field(line: string, index: number): string {
  return line.split(':')[index] ?? '';
}

function withTrailingNewline(ls: string[]): string {
  return ls.length === 0 ? '' : ls.join('\n') + '\n';
}

function firstFreeId(used: Set<number>, from: number): number {
  let id = from;
  while (used.has(id)) id++;
  return id;
}

export function addUser(files: AccountFiles, user: NewUser, now: Date = new Date()): AddedUser {
  const passwd = lines(files.passwd);
  const shadow = lines(files.shadow);
  let group = lines(files.group);

  if (passwd.some((l) => field(l, 0) === user.name)) {
    throw new UserError(`user "${user.name}" already exists in the image's /etc/passwd`, {
      hint: 'pick another name in [[customizations.user]], or drop the entry and configure the existing user in the image',
    });
  }
  const usedUids = new Set(passwd.map((l) => Number(field(l, 2))));
  const usedGids = new Set(group.map((l) => Number(field(l, 2))));
  const uid = user.uid ?? firstFreeId(usedUids, FIRST_REGULAR_ID);
  if (user.uid !== undefined && usedUids.has(user.uid)) {
    throw new UserError(`uid ${user.uid} for user "${user.name}" is already taken in /etc/passwd`);
  }

  let gid = user.gid;
  if (gid === undefined) {
    const existing = group.find((l) => field(l, 0) === user.name);
    if (existing) {
      gid = Number(field(existing, 2));
    } else {
      gid = usedGids.has(uid) ? firstFreeId(usedGids, FIRST_REGULAR_ID) : uid;
      group.push(`${user.name}:x:${gid}:`);
    }
  }

  for (const g of user.groups ?? []) {
    const index = group.findIndex((l) => field(l, 0) === g);
    if (index < 0) {
      throw new UserError(`group "${g}" for user "${user.name}" does not exist in the image`, {
        hint: `list only groups the image defines (see its /etc/group), e.g. "sudo" on Debian or "wheel" on Fedora`,
      });
    }
    const parts = group[index]!.split(':');
    const members = (parts[3] ?? '').split(',').filter((m) => m !== '');
    if (!members.includes(user.name)) members.push(user.name);
    parts[3] = members.join(',');
    group[index] = parts.join(':');
  }

  const home = user.home ?? `/home/${user.name}`;
  const shell = user.shell ?? '/bin/bash';
  passwd.push(`${user.name}:x:${uid}:${gid}::${home}:${shell}`);
  const lastChange = Math.floor(now.getTime() / DAY_MS);
  shadow.push(`${user.name}:${user.passwordHash ?? '!'}:${lastChange}:0:99999:7:::`);

  return {
    files: { passwd: withTrailingNewline(passwd), shadow: withTrailingNewline(shadow), group: withTrailingNewline(group) },
    uid,
    gid,
    home,
  };
}

/** A crypt(3) hash as shadow stores it: "$id$…" (yescrypt "$y$", sha512 "$6$", …). */
export function isPasswordHash(value: string): boolean {
  return /^\$[0-9a-z]+\$/.test(value);
}

/** A user to add, with the SSH public key to put in its home (bib's `key`). */
export interface UserToAdd extends NewUser {
  sshKey?: string;
}

/** Where a home directory lives in the stateroot's /var: /home is a link to /var/home. */
export function homeInVar(home: string, user: string): string {
  if (home.startsWith('/var/')) return home.slice('/var/'.length);
  if (home.startsWith('/home/')) return home.slice(1);
  throw new UserError(`the home directory ${home} of user "${user}" is not under /home or /var`, {
    hint: 'on an image-based system only /var is persistent and writable; put homes under /home (a link to /var/home)',
  });
}

const ACCOUNT_FILES = [
  ['passwd', 0o644],
  ['group', 0o644],
  ['shadow', 0o640],
] as const;

/**
 * Adds `users` to the deployment at `deploymentDir` (its etc/passwd, group, shadow), with
 * their homes under `stateVar` (the stateroot's /var). A file the image has keeps its owner
 * and mode (Debian's shadow is root:shadow 0640); a new one is root's.
 */
export async function addUsers(deploymentDir: string, stateVar: string, users: readonly UserToAdd[]): Promise<void> {
  if (users.length === 0) return;
  const etc = join(deploymentDir, 'etc');
  const read = (name: string): Promise<string> => readFile(join(etc, name), 'utf8').catch(() => '');
  let files: AccountFiles = { passwd: await read('passwd'), shadow: await read('shadow'), group: await read('group') };
  // Every home is checked before any file is written.
  const homes: Array<{ user: UserToAdd; added: AddedUser; home: string }> = [];
  for (const user of users) {
    const added = addUser(files, user);
    homes.push({ user, added, home: join(stateVar, homeInVar(added.home, user.name)) });
    files = added.files;
  }
  for (const [name, mode] of ACCOUNT_FILES) {
    const path = join(etc, name);
    const owner = await stat(path).catch(() => null);
    await writeFileAtomic(path, files[name], owner ? owner.mode & 0o7777 : mode);
    if (owner) await chown(path, owner.uid, owner.gid);
  }
  for (const { user, added, home } of homes) {
    await withContext(`Creating the home of user ${user.name}`, async () => {
      await mkdir(home, { recursive: true, mode: 0o700 });
      await chown(home, added.uid, added.gid);
      await chmod(home, 0o700);
      if (user.sshKey === undefined) return;
      const ssh = join(home, '.ssh');
      await mkdir(ssh, { recursive: true, mode: 0o700 });
      await writeFileAtomic(join(ssh, 'authorized_keys'), user.sshKey.trimEnd() + '\n', 0o600);
      await chown(ssh, added.uid, added.gid);
      await chown(join(ssh, 'authorized_keys'), added.uid, added.gid);
    });
  }
}
