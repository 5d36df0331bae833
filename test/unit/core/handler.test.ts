import { describe, expect, it } from 'vitest';
import { EXIT, UsageError, reportError } from '../../../src/core/handler.js';
import {
  BugError,
  ExternalCommandError,
  InterruptedError,
  UserError,
  withContext,
} from '../../../src/core/errors.js';

function render(err: unknown, verbose = false): { code: number; text: string } {
  let text = '';
  const code = reportError(err, { verbose, write: (t) => (text += t) });
  return { code, text };
}

const commandFailure = new ExternalCommandError({
  description: 'Partitioning /dev/loop0',
  commandLine: 'sfdisk --wipe=always /dev/loop0',
  exitCode: 1,
  signal: null,
  stderr: 'sfdisk: cannot open /dev/loop0: Permission denied',
  hint: 'run as root',
});

describe('top-level error handler', () => {
  it('user error: exit 1, message and hint, no stack', () => {
    const { code, text } = render(new UserError('Device /dev/sda is mounted at /', { hint: 'pick another disk' }));
    expect(code).toBe(EXIT.failure);
    expect(text).toBe('error: Device /dev/sda is mounted at /\nhint: pick another disk\n');
  });

  it('user error with --verbose shows the stack', () => {
    const { text } = render(new UserError('nope'), true);
    expect(text).toMatch(/UserError: nope\n\s+at /);
  });

  it('external command: exit 1, with command line, stderr and hint', () => {
    const { code, text } = render(commandFailure);
    expect(code).toBe(EXIT.failure);
    expect(text).toBe(
      [
        'error: Partitioning /dev/loop0: command exited with code 1',
        '  command: sfdisk --wipe=always /dev/loop0',
        '  stderr:',
        '    sfdisk: cannot open /dev/loop0: Permission denied',
        'hint: run as root',
        '',
      ].join('\n'),
    );
  });

  it('context reads as a path through the pipeline', async () => {
    const err = await withContext('Installing to disk', () =>
      withContext('Listing device /dev/vda', async () => {
        throw new UserError('no such device', { hint: 'check the device name with lsblk' });
      }),
    ).catch((e: unknown) => e);
    const { code, text } = render(err);
    expect(code).toBe(EXIT.failure);
    expect(text).toBe(
      'error: Installing to disk: Listing device /dev/vda: no such device\nhint: check the device name with lsblk\n',
    );
  });

  it('bugs: exit 70 and always a stack', () => {
    const { code, text } = render(new BugError('deployment list out of order'));
    expect(code).toBe(EXIT.bug);
    expect(text).toContain('This is a bug in bootc');
    expect(text).toMatch(/BugError: deployment list out of order\n\s+at /);
  });

  it('unexpected errors count as bugs', () => {
    const { code, text } = render(new TypeError('x is undefined'));
    expect(code).toBe(EXIT.bug);
    expect(text).toMatch(/TypeError: x is undefined/);
  });

  it('usage errors exit 2', () => {
    const { code, text } = render(new UsageError('Unknown argument: frobnicate'));
    expect(code).toBe(EXIT.usage);
    expect(text).toContain('--help');
  });

  it('interruption exits 130 without a stack', () => {
    const { code, text } = render(new InterruptedError('SIGINT'), true);
    expect(code).toBe(EXIT.interrupted);
    expect(text).toBe('error: Interrupted by SIGINT\n');
  });
});
