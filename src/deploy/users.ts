/**
 * Adding users to a deployment's /etc (bootc-image-builder's `[[customizations.user]]`).
 * Pure text edits of passwd, shadow and group, so they are tested without root; the caller
 * reads and writes the files and creates the home directory under the stateroot's /var.
 */
import { UserError } from '../core/errors.js';

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
