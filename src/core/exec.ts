/**
 * The one way this project runs external programs. Each call names what it is doing; on
 * failure the error carries that description, a command line that can be pasted into a
 * shell, the exit code and the tail of stderr. A program that is not installed ends in a
 * UserError naming the Debian package to install.
 */
import { existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { ExternalCommandError, UserError } from './errors.js';
import { commandLine } from './shell-quote.js';
import { debianPackageFor } from './host-packages.js';
import { debug } from './log.js';

export interface CommandSpec {
  /** What this command does, in the user's words: "Creating the ext4 root filesystem". */
  description: string;
  argv: readonly [string, ...string[]];
  stdin?: string | Uint8Array;
  cwd?: string;
  env?: Readonly<Record<string, string>>;
  timeoutMs?: number;
  /** Shown after the failure, when we know a likely fix. */
  hint?: string;
  /** Exit codes that are not failures (e.g. `fsck` returning 1 for "errors corrected"). */
  okExitCodes?: readonly number[];
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** How much of stderr an error keeps: enough to see the cause, not a whole log. */
const STDERR_TAIL_LINES = 40;

export function tail(text: string, lines: number = STDERR_TAIL_LINES): string {
  const all = text.trimEnd().split('\n');
  return all.length <= lines ? all.join('\n') : ['…', ...all.slice(-lines)].join('\n');
}

/**
 * Programs the tool layer brings along (images/bootc-ts/stage.sh), so an image needs no
 * package of theirs: used when the system has none of its own on PATH.
 */
export const TOOL_HELPERS_DIR = '/usr/lib/bootc/bin';
const TOOL_HELPERS: ReadonlySet<string> = new Set(['getfattr', 'setfattr']);

/** The file `program` runs from on PATH (`path`), or null when no directory of it has one. */
export function findOnPath(program: string, path: string = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(':')) if (dir !== '' && existsSync(`${dir}/${program}`)) return `${dir}/${program}`;
  return null;
}

/** Where `program` is run from: PATH, or for a helper the system lacks, the tool layer's copy. */
export function resolveProgram(program: string, helpersDir: string = TOOL_HELPERS_DIR, path: string = process.env.PATH ?? ''): string {
  if (!TOOL_HELPERS.has(program)) return program;
  if (findOnPath(program, path) !== null) return program;
  const bundled = `${helpersDir}/${program}`;
  return existsSync(bundled) ? bundled : program;
}

function missingProgram(spec: CommandSpec): UserError {
  const program = spec.argv[0];
  const pkg = debianPackageFor(program);
  return new UserError(`${spec.description}: \`${program}\` is not installed`, {
    hint: pkg ? `install the Debian package ${pkg} (apt-get install ${pkg})` : `install ${program} and retry`,
  });
}

function isEnoent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}

/** The environment a command runs with: ours, plus what the spec sets. */
function environment(spec: CommandSpec): NodeJS.ProcessEnv | undefined {
  return spec.env ? { ...process.env, ...spec.env } : undefined;
}

/** How a finished child ended: its exit code, or the signal that stopped it. */
interface Ending {
  exitCode: number | null;
  signal: string | null;
}

/** What of a program's stderr is kept at most: an error shows only its tail anyway. */
const STDERR_KEEP_BYTES = 1 << 20;

/**
 * Waits for `child` to exit with its streams closed, keeping (the last MiB of) what it wrote
 * to stderr. Rejects with the missing-program UserError when it could not be started.
 */
function ending(child: ChildProcess, spec: CommandSpec, stderr: Buffer[]): Promise<Ending> {
  let kept = 0;
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr.push(chunk);
    kept += chunk.length;
    while (kept > STDERR_KEEP_BYTES && stderr.length > 1) kept -= stderr.shift()!.length;
  });
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(isEnoent(err) ? missingProgram(spec) : err));
    child.once('close', (exitCode, signal) => resolve({ exitCode, signal }));
  });
}

function failure(spec: CommandSpec, ended: Ending, stderr: string): ExternalCommandError {
  return new ExternalCommandError({
    description: spec.description,
    commandLine: commandLine(spec.argv, spec.env),
    exitCode: ended.exitCode,
    signal: ended.signal,
    stderr: tail(stderr),
    hint: spec.hint,
  });
}

/** Run a program to completion and return its output as text. */
export async function run(spec: CommandSpec): Promise<CommandResult> {
  const [name, ...args] = spec.argv;
  debug(`exec: ${commandLine(spec.argv, spec.env)}`);
  const child = spawn(resolveProgram(name), args, {
    cwd: spec.cwd,
    env: environment(spec),
    stdio: [spec.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  const ended = ending(child, spec, stderr);
  if (spec.stdin !== undefined) {
    // A program that exits before reading all its input explains itself by its exit status.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(spec.stdin);
  }
  let timedOut = false;
  const timer = spec.timeoutMs === undefined ? undefined : setTimeout(() => ((timedOut = true), child.kill()), spec.timeoutMs);
  try {
    const result = await ended;
    const out = Buffer.concat(stdout).toString('utf8');
    const err = Buffer.concat(stderr).toString('utf8');
    const exitCode = result.exitCode;
    const ok = exitCode === 0 || (exitCode !== null && (spec.okExitCodes ?? []).includes(exitCode));
    if (!ok || timedOut) throw failure(spec, timedOut ? { exitCode, signal: 'timeout' } : result, err);
    return { stdout: out, stderr: err, exitCode: exitCode ?? 0 };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Start a program whose stdout or stdin the caller streams (e.g. `tar`, `qemu-img`).
 * `done` rejects with the same errors as `run`.
 */
export function spawnStreaming(
  spec: CommandSpec & { stdio?: { stdin?: 'pipe' | 'ignore' | 'inherit'; stdout?: 'pipe' | 'ignore' | 'inherit' } },
): { child: ChildProcess; done: Promise<void> } {
  const [name, ...args] = spec.argv;
  debug(`exec (streaming): ${commandLine(spec.argv, spec.env)}`);
  const child = spawn(resolveProgram(name), args, {
    cwd: spec.cwd,
    env: environment(spec),
    stdio: [spec.stdio?.stdin ?? 'pipe', spec.stdio?.stdout ?? 'pipe', 'pipe'],
  });
  const stderr: Buffer[] = [];
  const done = ending(child, spec, stderr).then((result) => {
    if (result.exitCode !== 0) throw failure(spec, result, Buffer.concat(stderr).toString('utf8'));
  });
  // The caller awaits `done` once it has streamed what it wanted; a failure before then is
  // reported there, not as an unhandled rejection.
  done.catch(() => undefined);
  return { child, done };
}
