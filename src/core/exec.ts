/**
 * The one way this project runs external programs. Each call names what it is doing; on
 * failure the error carries that description, a command line that can be pasted into a
 * shell, the exit code and the tail of stderr. A program that is not installed ends in a
 * UserError naming the Debian package to install.
 */
import { existsSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
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

/** Run a program to completion and return its output as text. */
export async function run(spec: CommandSpec): Promise<CommandResult> {
  const [name, ...args] = spec.argv;
  const program = resolveProgram(name);
  debug(`exec: ${commandLine(spec.argv, spec.env)}`);
  let result;
  try {
    result = await execa(program, args, {
      cwd: spec.cwd,
      env: spec.env ? { ...spec.env } : undefined,
      input: spec.stdin,
      timeout: spec.timeoutMs,
      reject: false,
      stripFinalNewline: false,
      encoding: 'utf8',
    });
  } catch (err) {
    if (isEnoent(err)) throw missingProgram(spec);
    throw err;
  }
  if (result.failed && isEnoent(result.cause)) throw missingProgram(spec);
  const exitCode = result.exitCode ?? null;
  const ok = exitCode === 0 || (exitCode !== null && (spec.okExitCodes ?? []).includes(exitCode));
  if (!ok || result.timedOut) {
    throw new ExternalCommandError({
      description: spec.description,
      commandLine: commandLine(spec.argv, spec.env),
      exitCode,
      signal: result.timedOut ? 'timeout' : (result.signal ?? null),
      stderr: tail(String(result.stderr ?? '')),
      hint: spec.hint,
    });
  }
  return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode: exitCode ?? 0 };
}

/**
 * Start a program whose stdout or stdin the caller streams (e.g. `tar`, `qemu-img`).
 * The returned promise rejects with the same ExternalCommandError as `run`.
 */
export function spawnStreaming(
  spec: CommandSpec & { stdio?: { stdin?: 'pipe' | 'ignore' | 'inherit'; stdout?: 'pipe' | 'ignore' | 'inherit' } },
): { child: ResultPromise; done: Promise<void> } {
  const [name, ...args] = spec.argv;
  const program = resolveProgram(name);
  debug(`exec (streaming): ${commandLine(spec.argv, spec.env)}`);
  const child = execa(program, args, {
    cwd: spec.cwd,
    env: spec.env ? { ...spec.env } : undefined,
    stdin: spec.stdio?.stdin ?? 'pipe',
    stdout: spec.stdio?.stdout ?? 'pipe',
    stderr: 'pipe',
    reject: false,
    buffer: { stdout: false, stderr: true },
    encoding: 'buffer',
  });
  const done = child.then((result) => {
    if (result.failed && isEnoent(result.cause)) throw missingProgram(spec);
    if (result.exitCode !== 0) {
      throw new ExternalCommandError({
        description: spec.description,
        commandLine: commandLine(spec.argv, spec.env),
        exitCode: result.exitCode ?? null,
        signal: result.signal ?? null,
        stderr: tail(Buffer.from(result.stderr as Uint8Array).toString('utf8')),
        hint: spec.hint,
      });
    }
  });
  return { child, done };
}
