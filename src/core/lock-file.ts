/**
 * Lock files. The update lock: upgrade, switch, rollback and edit each take it, so two of
 * them never interleave their writes to the deployments, the boot entries or the staged
 * marker. The store lock: `image build-disk` takes it on its --store, whose object store it
 * imports into and cleans up.
 *
 * The lock is a file, `<physical root>/bootc/lock`, holding who took it (pid, command, time,
 * boot id, process start time) as JSON. It is created complete or not at all: the record is
 * written to a temp file and hardlinked to the lock name, and link(2) fails with EEXIST when
 * the lock exists, so a reader never sees a half-written holder.
 *
 * A holder that no longer runs leaves a stale lock (power loss, SIGKILL). It is stale when it
 * was taken in another boot (the file sits on the physical root, which outlives reboots), or
 * its pid is gone, or that pid now belongs to a different process (start time differs). A
 * stale lock is taken over with a warning: it is renamed aside and the takeover goes ahead
 * only if what was renamed is the very record judged stale; otherwise a live lock that another
 * process had just taken is put back. Normal exit releases the lock, also on an uncaught error.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BugError, UserError } from '../core/errors.js';
import { processRuns } from '../core/process.js';
import { warn } from '../core/log.js';
import { parseRecordOrNull, positiveInteger, recordCheck } from '../core/record.js';

export interface UpdateLockHolder {
  pid: number;
  /** The command line in the user's words, e.g. `bootc upgrade --apply`. */
  command: string;
  /** ISO 8601 time the lock was taken. */
  since: string;
  /** /proc/sys/kernel/random/boot_id of the boot the lock was taken in, when known. */
  bootId: string | null;
  /** The holder's start time in clock ticks since boot (/proc/PID/stat field 22), when known. */
  startTime: string | null;
}

export interface UpdateLock {
  readonly path: string;
  readonly holder: UpdateLockHolder;
  release(): Promise<void>;
}

/** Where update commands take the lock on a physical root. */
export function updateLockPath(physicalRoot: string): string {
  return join(physicalRoot, 'bootc', 'lock');
}

/** How often a takeover of a stale lock may race with another process before giving up. */
const MAX_ATTEMPTS = 5;

function currentBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

/** Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces and parentheses. */
export function processStartTime(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  return fields[19] ?? null;
}

/** Why a recorded holder no longer holds the lock, or null when it still runs. */
export function whyStale(holder: UpdateLockHolder, bootId: string | null = currentBootId()): string | null {
  if (holder.bootId !== null && bootId !== null && holder.bootId !== bootId) return 'it was taken before the last reboot';
  if (!processRuns(holder.pid)) return 'that process is no longer running';
  if (holder.startTime !== null) {
    const now = processStartTime(holder.pid);
    if (now !== null && now !== holder.startTime) return 'that process is no longer running (its pid was reused)';
  }
  return null;
}

const holderCheck = recordCheck({ pid: positiveInteger });

function parseHolder(text: string): UpdateLockHolder | null {
  const v = parseRecordOrNull<Partial<UpdateLockHolder> & Pick<UpdateLockHolder, 'pid'>>(text, holderCheck);
  if (v === null) return null;
  return {
    pid: v.pid,
    command: typeof v.command === 'string' ? v.command : 'unknown command',
    since: typeof v.since === 'string' ? v.since : 'an unknown time',
    bootId: typeof v.bootId === 'string' ? v.bootId : null,
    startTime: typeof v.startTime === 'string' ? v.startTime : null,
  };
}

function describeHolder(h: UpdateLockHolder): string {
  return `pid ${h.pid}: \`${h.command}\`, since ${h.since}`;
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

/**
 * Locks this process holds (path → the record it wrote), released at exit even when the
 * command fails. A lock is recognised as ours by its record, not its inode number: a lock
 * removed and re-created by someone else can get the same inode back at once.
 */
const heldHere = new Map<string, string>();

function releaseAtExit(): void {
  for (const [path, record] of heldHere) {
    try {
      if (readFileSync(path, 'utf8') === record) unlinkSync(path);
    } catch {
      // Already gone: nothing to release.
    }
  }
  heldHere.clear();
}
let exitHookInstalled = false;

/**
 * Take the update lock for `command` (e.g. `bootc upgrade`). A live holder makes this a
 * UserError naming it; a stale one is taken over with a warning.
 */
export async function acquireUpdateLock(path: string, command: string, what = 'the update lock'): Promise<UpdateLock> {
  if (heldHere.has(path)) throw new BugError(`this process already holds ${what} ${path}`);
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const holder: UpdateLockHolder = {
    pid: process.pid,
    command,
    since: new Date().toISOString(),
    bootId: currentBootId(),
    startTime: processStartTime(process.pid),
  };
  const text = JSON.stringify(holder) + '\n';
  const record = `${path}.new-${process.pid}-${randomBytes(6).toString('hex')}`;
  await writeFile(record, text, { mode: 0o644, flag: 'wx' });
  try {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      try {
        await link(record, path);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
        await removeStaleLock(path, what);
        continue;
      }
      heldHere.set(path, text);
      if (!exitHookInstalled) {
        process.on('exit', releaseAtExit);
        exitHookInstalled = true;
      }
      return { path, holder, release: () => releaseUpdateLock(path) };
    }
    throw new UserError(`could not take ${what} ${path}: other processes keep taking it over`, {
      hint: 'another bootc command is starting at the same moment; wait for it to finish and retry',
    });
  } finally {
    await unlink(record).catch(() => undefined);
  }
}

/** Throw if the lock at `path` has a live holder; remove it if stale. */
async function removeStaleLock(path: string, what: string): Promise<void> {
  let text;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return; // Released meanwhile: try again.
    throw err;
  }
  const holder = parseHolder(text);
  if (holder) {
    if (holder.pid === process.pid && holder.startTime === processStartTime(process.pid)) {
      throw new BugError(`this process already holds ${what} ${path}`);
    }
    const reason = whyStale(holder);
    if (reason === null) {
      throw new UserError(`another bootc command (${describeHolder(holder)}) holds ${what}`, {
        hint: `wait for it to finish and retry; if no such command is running, remove ${path}`,
      });
    }
    warn(`taking over ${what} from ${describeHolder(holder)}: ${reason}`);
  } else {
    warn(`taking over ${what} ${path}: its holder record is unreadable`);
  }
  const aside = `${path}.stale-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  if ((await readFile(aside, 'utf8')) !== text) {
    // Another process took the lock over between our read and our rename: give it back.
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside);
}

async function releaseUpdateLock(path: string): Promise<void> {
  const record = heldHere.get(path);
  if (record === undefined) return;
  heldHere.delete(path);
  try {
    // Only our own lock: a lock someone else took over after judging us stale is theirs.
    if ((await readFile(path, 'utf8')) === record) await unlink(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

/** Run `fn` holding the lock (`what`: its name in messages); the lock is released however `fn` ends. */
export async function withUpdateLock<T>(path: string, command: string, fn: () => Promise<T>, what?: string): Promise<T> {
  const lock = await acquireUpdateLock(path, command, what);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
