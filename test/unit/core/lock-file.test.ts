import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync, existsSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BugError, UserError } from '../../../src/core/errors.js';
import {
  acquireUpdateLock,
  processStartTime,
  updateLockPath,
  whyStale,
  withUpdateLock,
  type UpdateLockHolder,
} from '../../../src/core/lock-file.js';
import { testDir } from '../../support/temp-tree.js';

const LOCK_MODULE = resolve(import.meta.dirname, '../../../src/core/lock-file.ts');

/**
 * A second bootc process: takes the lock, reports on stdout, holds it until its stdin
 * closes, then releases it (or, with exit-without-release, just exits).
 */
const CHILD = `
const { acquireUpdateLock } = await import(process.env.LOCK_MODULE);
try {
  const lock = await acquireUpdateLock(process.env.LOCK_PATH, process.env.LOCK_COMMAND);
  process.stdout.write('held\\n');
  process.stdin.resume();
  await new Promise((r) => process.stdin.on('end', r));
  if (process.env.LOCK_MODE !== 'exit-without-release') await lock.release();
} catch (err) {
  process.stdout.write('refused: ' + err.message + '\\n');
}
`;

interface Child {
  proc: ChildProcess;
  /** The first line it printed: "held" or "refused: …". */
  first: Promise<string>;
}

function startChild(lockPath: string, command: string, mode = ''): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
    env: { ...process.env, LOCK_MODULE, LOCK_PATH: lockPath, LOCK_COMMAND: command, LOCK_MODE: mode },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const first = new Promise<string>((resolveLine, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolveLine(out.slice(0, nl));
    });
    proc.on('exit', (code) => reject(new Error(`child exited (${code}) before reporting: ${out}`)));
  });
  return { proc, first };
}

async function finish(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = once(child.proc, 'exit');
  child.proc.stdin!.end();
  await exited;
}

async function messageOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

describe('update lock', () => {
  let dir: string;
  let lockPath: string;
  const children: Child[] = [];

  beforeEach(() => {
    dir = testDir('lock');
    lockPath = updateLockPath(dir);
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.proc.kill('SIGKILL');
      await finish(c).catch(() => undefined);
    }
    vi.restoreAllMocks();
  });

  it('lives under the physical root', () => {
    expect(updateLockPath('/sysroot')).toBe('/sysroot/bootc/lock');
  });

  it('records who holds it and is gone after release', async () => {
    const lock = await acquireUpdateLock(lockPath, 'bootc upgrade');
    const recorded = JSON.parse(readFileSync(lockPath, 'utf8')) as UpdateLockHolder;
    expect(recorded.pid).toBe(process.pid);
    expect(recorded.command).toBe('bootc upgrade');
    expect(Date.parse(recorded.since)).not.toBeNaN();
    expect(recorded.startTime).toBe(processStartTime(process.pid));
    expect(recorded.bootId).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    await lock.release();
    expect(existsSync(lockPath)).toBe(false);
    // No temp files left beside it.
    expect(readdirSync(join(dir, 'bootc'))).toEqual([]);
  });

  it('withUpdateLock releases the lock when the work fails', async () => {
    await expect(withUpdateLock(lockPath, 'bootc switch', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(existsSync(lockPath)).toBe(false);
    await withUpdateLock(lockPath, 'bootc switch', async () => undefined);
  });

  it('taking it twice in one process is a bug', async () => {
    const lock = await acquireUpdateLock(lockPath, 'bootc upgrade');
    expect(await messageOf(acquireUpdateLock(lockPath, 'bootc upgrade'))).toBeInstanceOf(BugError);
    await lock.release();
  });

  it('a second process is refused with the holder named, and gets it once the first releases', async () => {
    const holder = startChild(lockPath, 'bootc upgrade --apply');
    children.push(holder);
    expect(await holder.first).toBe('held');
    const since = (JSON.parse(readFileSync(lockPath, 'utf8')) as UpdateLockHolder).since;

    const err = await messageOf(acquireUpdateLock(lockPath, 'bootc rollback'));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`another bootc command (pid ${holder.proc.pid}: \`bootc upgrade --apply\`, since ${since}) holds the update lock`);
    expect((err as UserError).hint).toContain(lockPath);

    await finish(holder);
    const lock = await acquireUpdateLock(lockPath, 'bootc rollback');
    await lock.release();
  });

  it('a process that exits without releasing leaves no lock behind', async () => {
    const holder = startChild(lockPath, 'bootc upgrade', 'exit-without-release');
    children.push(holder);
    expect(await holder.first).toBe('held');
    await finish(holder);
    expect(existsSync(lockPath)).toBe(false);
  });

  it('a killed holder leaves a stale lock that the next command takes over with a warning', async () => {
    const holder = startChild(lockPath, 'bootc upgrade');
    children.push(holder);
    expect(await holder.first).toBe('held');
    const exited = once(holder.proc, 'exit');
    holder.proc.kill('SIGKILL');
    await exited;
    expect(existsSync(lockPath)).toBe(true);

    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const lock = await acquireUpdateLock(lockPath, 'bootc switch');
    const warned = stderr.mock.calls.map((c) => String(c[0])).join('');
    stderr.mockRestore();
    expect(warned).toContain(`taking over the update lock from pid ${holder.proc.pid}: \`bootc upgrade\``);
    expect(warned).toContain('no longer running');
    expect((JSON.parse(readFileSync(lockPath, 'utf8')) as UpdateLockHolder).pid).toBe(process.pid);
    await lock.release();
  });

  it('of several processes starting at once, exactly one gets the lock', async () => {
    const racers = Array.from({ length: 4 }, (_, i) => startChild(lockPath, `bootc upgrade #${i}`));
    children.push(...racers);
    const results = await Promise.all(racers.map((r) => r.first));
    expect(results.filter((r) => r === 'held')).toHaveLength(1);
    for (const r of results.filter((r) => r !== 'held')) expect(r).toMatch(/^refused: another bootc command \(pid \d+: `bootc upgrade #\d`/);
  });

  it('release leaves alone a lock that another process took over meanwhile', async () => {
    const lock = await acquireUpdateLock(lockPath, 'bootc upgrade');
    unlinkSync(lockPath);
    writeFileSync(lockPath, JSON.stringify({ pid: 1, command: 'bootc switch', since: 'x', bootId: null, startTime: null }));
    await lock.release();
    expect(JSON.parse(readFileSync(lockPath, 'utf8')).command).toBe('bootc switch');
  });

  it('an unreadable lock record is taken over with a warning', async () => {
    await withUpdateLock(lockPath, 'bootc upgrade', async () => undefined); // creates the directory
    writeFileSync(lockPath, 'garbage');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const lock = await acquireUpdateLock(lockPath, 'bootc upgrade');
    const warned = stderr.mock.calls.map((c) => String(c[0])).join('');
    stderr.mockRestore();
    expect(warned).toContain('holder record is unreadable');
    await lock.release();
  });

  describe('whyStale', () => {
    const me = (): UpdateLockHolder => ({
      pid: process.pid,
      command: 'bootc upgrade',
      since: new Date().toISOString(),
      bootId: 'boot-a',
      startTime: processStartTime(process.pid),
    });

    it('a running holder is not stale', () => {
      expect(whyStale(me(), 'boot-a')).toBeNull();
    });
    it('a lock from an earlier boot is stale even if the pid runs now', () => {
      expect(whyStale(me(), 'boot-b')).toBe('it was taken before the last reboot');
    });
    it('a reused pid (other start time) is stale', () => {
      expect(whyStale({ ...me(), startTime: '1' }, 'boot-a')).toMatch(/pid was reused/);
    });
    it('a pid that does not exist is stale', () => {
      // pid_max is at most 2^22 on Linux: this pid cannot exist.
      expect(whyStale({ ...me(), pid: 2 ** 22 + 1 }, 'boot-a')).toBe('that process is no longer running');
    });
  });
});
