/**
 * The interactive installer (started by launch.ts, on a terminal). While it
 * runs, everything the pipeline would print on stderr (info, warnings, every command with
 * its debug line) goes to the log file and the log pane instead of over the screen.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { render } from 'ink';
import { cancellation } from '../core/cancel.js';
import { InterruptedError, UserError } from '../core/errors.js';
import { isVerbose, setVerbose } from '../core/log.js';
import { Installer } from './app.js';
import { Machine } from './machine.js';
import { PacedInput } from './paced-input.js';
import { LogBook } from './services.js';

export interface InteractiveInstallArgs {
  plain: boolean;
  sourceImgref?: string;
  targetImgref?: string;
  store: string;
  logFile?: string;
}

/** NO_COLOR (any value, https://no-color.org), --plain or a dumb terminal: no colours. */
export function wantsPlain(flag: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  return flag || (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') || env['TERM'] === 'dumb';
}

const defaultLogPath = (): string => `/var/log/bootc-install-${new Date().toISOString().replace(/[:.]/g, '-')}.log`;

export async function runInteractiveInstall(args: InteractiveInstallArgs): Promise<void> {
  const logPath = resolve(args.logFile ?? defaultLogPath());
  mkdirSync(dirname(logPath), { recursive: true });
  appendFileSync(logPath, `bootc install (interactive) started ${new Date().toISOString()}\n`, { mode: 0o600 });
  const log = new LogBook(500, (text) => appendFileSync(logPath, text));
  const machine = new Machine({ storeDir: resolve(args.store), logPath });
  const stderrWrite = process.stderr.write.bind(process.stderr);
  const wasVerbose = isVerbose();
  process.stderr.write = ((chunk: string | Uint8Array) => {
    log.write(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stderr.write;
  setVerbose(true);
  const stdin = new PacedInput(process.stdin);
  let outcome: { code: number; message?: string } = { code: 0 };
  try {
    const instance = render(
      <Installer
        services={machine}
        log={log}
        plain={wantsPlain(args.plain)}
        {...(args.sourceImgref !== undefined ? { defaultSource: args.sourceImgref } : {})}
        {...(args.targetImgref !== undefined ? { defaultTarget: args.targetImgref } : {})}
        onExit={(code, message) => {
          outcome = { code, ...(message !== undefined ? { message } : {}) };
          instance.unmount();
        }}
      />,
      { exitOnCtrlC: false, patchConsole: true, stdin: stdin as unknown as NodeJS.ReadStream },
    );
    await instance.waitUntilExit();
  } finally {
    stdin.close();
    process.stderr.write = stderrWrite;
    setVerbose(wasVerbose);
  }
  const { code, message } = outcome;
  if (message !== undefined && code === 0) process.stdout.write(message + '\n');
  if (code === 130) {
    // A pull started by the image screen may still run: stop it so the process ends now.
    cancellation.abort('SIGINT');
    throw new InterruptedError('the user: nothing was written to any disk');
  }
  if (code !== 0) {
    process.stderr.write(`The full log is in ${logPath}\n`);
    throw machine.failure ?? new UserError(message ?? 'the installer failed', { hint: `see ${logPath}` });
  }
}
