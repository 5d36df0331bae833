/**
 * The guest's serial console as a test drives it: wait for text, log in, run commands.
 *
 * Works on any duplex stream (qemu's serial socket in harness.ts, a PassThrough pair in the
 * unit tests), so everything but the VM itself is testable without qemu.
 *
 * Commands are typed at the autologin root shell. Each run is bracketed by markers made of
 * a fresh token; the shell is first switched to plain line input without echo, so the
 * output between the markers is exactly what the command printed.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** Lines of console shown in errors. */
const TAIL_LINES = 40;
/** A canonical-mode tty line holds 4096 bytes; longer input is silently cut by the kernel. */
const MAX_COMMAND_BYTES = 4000;
/** How often the shell setup is retyped while a fresh login may still discard input. */
const SETUP_RETRY_MS = 4000;

export interface RunResult {
  /**
   * What the command wrote to the terminal: stdout and stderr interleaved, CRs removed, the
   * final newline stripped (as execa does).
   */
  stdout: string;
  exitCode: number;
}

export class ConsoleTimeoutError extends Error {
  override name = 'ConsoleTimeoutError';
}

export class ConsoleClosedError extends Error {
  override name = 'ConsoleClosedError';
}

// --- pure parts ---------------------------------------------------------------------

// CSI (colours, cursor moves), OSC (titles), charset selection and two-byte escapes, as
// systemd, agetty and bash print them.
const ESCAPE_SEQUENCE =
  /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()*+][0-9A-Za-z]|[0-9=>@-Z\\-_a-z])/g;
const INCOMPLETE_ESCAPE_AT_END = /\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[()*+])?$/;

/**
 * Console bytes to matchable text: no CRs, no escape sequences. An escape sequence cut off
 * at the end of a chunk is returned as `rest` to be prepended to the next one.
 */
export function normalizeConsoleChunk(chunk: string): { text: string; rest: string } {
  const cut = INCOMPLETE_ESCAPE_AT_END.exec(chunk);
  const complete = cut ? chunk.slice(0, cut.index) : chunk;
  const rest = cut ? chunk.slice(cut.index) : '';
  return { text: complete.replace(ESCAPE_SEQUENCE, '').replace(/\r/g, ''), rest };
}

/** The last `count` lines of console text, for error messages. */
export function consoleTail(text: string, count = TAIL_LINES): string {
  const lines = text.replace(/\n$/, '').split('\n');
  return lines.slice(-count).join('\n');
}

export function newToken(): string {
  return randomBytes(6).toString('hex');
}

const beginMarker = (token: string): string => `__BOOTC_BEGIN_${token}__`;
const endMarkerPattern = (token: string): RegExp => new RegExp(`__BOOTC_END_${token}_(\\d+)__`);

/**
 * The line typed for one command. The markers are printed by printf from a format string
 * and the token as an argument, so the typed text itself never contains a marker (should
 * echo be on after all). The closing brace on its own line lets the command end in a
 * comment; stdin is /dev/null so the command cannot eat the next typed line.
 */
export function commandLine(command: string, token: string): string {
  return (
    `printf '__BOOTC_BEGIN_%s__\\n' ${token}; { ${command}\n} </dev/null; ` +
    `printf '\\n__BOOTC_END_%s_%s__\\n' ${token} "$?"\n`
  );
}

/**
 * Finds one command's result in console text. Returns null while the end marker has not
 * arrived. The newline printed before the end marker (so that it starts a line) is not part
 * of the output, and neither is the output's own final newline.
 */
export function parseCommandOutput(text: string, token: string): RunResult | null {
  const end = endMarkerPattern(token).exec(text);
  if (!end) return null;
  const begin = text.lastIndexOf(beginMarker(token) + '\n', end.index);
  if (begin < 0) {
    throw new Error(`console shows the end marker of command ${token} without its begin marker`);
  }
  const stdout = text.slice(begin + beginMarker(token).length + 1, end.index).replace(/\n\n?$/, '');
  return { stdout, exitCode: Number(end[1]) };
}

/**
 * Typed once per login: plain line input (no readline redraws), no echo, no prompts, no
 * colours or pagers, and only emergency kernel messages on the console, so nothing but
 * command output reaches the terminal. Ends by printing the ready marker.
 */
export function shellSetupLine(token: string): string {
  return (
    `stty -echo; set +o emacs +o vi; PS1=''; PS2=''; ` +
    `export TERM=dumb PAGER=cat SYSTEMD_PAGER= SYSTEMD_COLORS=0 LANG=C.UTF-8; ` +
    `dmesg -n 1; printf '__BOOTC_READY_%s__\\n' ${token}\n`
  );
}

const readyPattern = (token: string): RegExp => new RegExp(`__BOOTC_READY_${token}__`);

// --- the console --------------------------------------------------------------------

export interface WaitOptions {
  /** Search from this offset of `text` instead of the cursor (see `mark()`). */
  from?: number;
}

interface Waiter {
  pattern: RegExp;
  from: number;
  resolve: (m: RegExpExecArray) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface SerialConsoleOptions {
  /** Called with every raw chunk, e.g. to append to a log file or stream to stdout. */
  onData?: (raw: string) => void;
  /** Names the console in errors ("VM boot-fixture"), with where its full log is. */
  describe?: () => string;
  /** Loaded before a timeout message is written: what else the caller knows (qemu stderr). */
  extraErrorContext?: () => string;
  /** Why the stream ended, e.g. once qemu's exit status is known. */
  closeReason?: () => Promise<string>;
  /** How long waitForLogin gives the shell to answer before retyping its setup. */
  setupRetryMs?: number;
}

export class SerialConsole {
  /** Everything the guest printed, normalised (see normalizeConsoleChunk). */
  text = '';
  /** waitFor searches from here; a match moves it past the match. */
  cursor = 0;
  private pendingEscape = '';
  private waiters = new Set<Waiter>();
  private closedReason: string | null = null;

  constructor(
    private readonly stream: Duplex,
    private readonly options: SerialConsoleOptions = {},
  ) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => this.receive(chunk));
    // 'end' comes after the last data: pending waits fail with the whole console in view.
    const ended = (): void => {
      void (this.options.closeReason?.() ?? Promise.resolve('the serial console closed')).then((reason) =>
        this.close(reason),
      );
    };
    stream.on('end', ended);
    stream.on('close', ended);
    stream.on('error', (err) => this.close(`the serial console failed: ${err.message}`));
  }

  /** Current end of the text, to wait for something printed after this point. */
  mark(): number {
    return this.text.length;
  }

  write(data: string): void {
    if (this.closedReason) throw new ConsoleClosedError(this.closedReason);
    this.stream.write(data);
  }

  /**
   * Waits until `pattern` matches console text after the cursor, then moves the cursor past
   * the match. On timeout the error carries the last 40 lines of the console.
   */
  waitFor(pattern: RegExp, timeoutMs: number, options: WaitOptions = {}): Promise<RegExpExecArray> {
    const from = options.from ?? this.cursor;
    const now = this.match(pattern, from);
    if (now) return Promise.resolve(now);
    if (this.closedReason) return Promise.reject(this.closedError(pattern));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pattern,
        from,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(this.timeoutError(pattern, timeoutMs));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  /**
   * Waits for the autologin shell and prepares it for `run`: the setup line is retyped
   * until the shell answers, because getty and login flush input typed too early.
   */
  async waitForLogin(timeoutMs: number, loginPattern = /\(automatic login\)/): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.waitFor(loginPattern, timeoutMs);
    for (;;) {
      const token = newToken();
      this.write(shellSetupLine(token));
      const retryMs = this.options.setupRetryMs ?? SETUP_RETRY_MS;
      const roundMs = Math.max(1, Math.min(retryMs, deadline - Date.now()));
      try {
        await this.waitFor(readyPattern(token), roundMs);
        return;
      } catch (err) {
        if (!(err instanceof ConsoleTimeoutError)) throw err;
        if (Date.now() >= deadline) throw this.timeoutError(/the shell to answer its setup line/, timeoutMs);
      }
    }
  }

  /** Types `command` at the prepared shell and returns its output and exit code. */
  async run(command: string, timeoutMs: number): Promise<RunResult> {
    const token = newToken();
    const line = commandLine(command, token);
    if (Buffer.byteLength(line) > MAX_COMMAND_BYTES) {
      throw new Error(
        `command is ${Buffer.byteLength(line)} bytes; a tty line holds ${MAX_COMMAND_BYTES}: ` +
          `copy large content in through a disk or in chunks`,
      );
    }
    const from = this.mark();
    this.write(line);
    try {
      await this.waitFor(endMarkerPattern(token), timeoutMs, { from });
    } catch (err) {
      if (err instanceof ConsoleTimeoutError) {
        throw new ConsoleTimeoutError(`command \`${command}\` did not finish: ${err.message}`);
      }
      throw err;
    }
    const result = parseCommandOutput(this.text.slice(from), token);
    if (!result) throw new Error(`bug: end marker of ${token} matched but did not parse`);
    return result;
  }

  /** Like run, but a non-zero exit is an error showing the output. */
  async runOk(command: string, timeoutMs: number): Promise<string> {
    const { stdout, exitCode } = await this.run(command, timeoutMs);
    if (exitCode !== 0) {
      throw new Error(`\`${command}\` exited with ${exitCode} in the guest:\n${stdout}`);
    }
    return stdout;
  }

  /** Stops waiting: pending waits fail with `reason` and the console tail. */
  close(reason: string): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(this.closedError(waiter.pattern));
    }
    this.waiters.clear();
  }

  private receive(raw: string): void {
    this.options.onData?.(raw);
    const { text, rest } = normalizeConsoleChunk(this.pendingEscape + raw);
    this.pendingEscape = rest;
    this.text += text;
    for (const waiter of this.waiters) {
      const m = this.match(waiter.pattern, waiter.from);
      if (!m) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve(m);
    }
  }

  private match(pattern: RegExp, from: number): RegExpExecArray | null {
    const flags = pattern.flags.replace(/[gy]/g, '');
    const m = new RegExp(pattern.source, flags).exec(this.text.slice(from));
    if (!m) return null;
    m.index += from;
    this.cursor = Math.max(this.cursor, m.index + m[0].length);
    return m;
  }

  private context(): string {
    const who = this.options.describe?.() ?? 'serial console';
    const extra = this.options.extraErrorContext?.() ?? '';
    const tail = consoleTail(this.text.slice(-64 * 1024));
    return `${who}${extra ? `\n${extra}` : ''}\n--- last ${TAIL_LINES} console lines ---\n${tail}\n---`;
  }

  private timeoutError(pattern: RegExp, timeoutMs: number): ConsoleTimeoutError {
    return new ConsoleTimeoutError(
      `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${pattern} on ${this.context()}`,
    );
  }

  private closedError(pattern: RegExp): ConsoleClosedError {
    return new ConsoleClosedError(`${this.closedReason} while waiting for ${pattern} on ${this.context()}`);
  }
}
