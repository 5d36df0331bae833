import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { resolveProgram, run, tail } from '../../../src/core/exec.js';
import { ExternalCommandError, UserError } from '../../../src/core/errors.js';
import { commandLine, quoteArg } from '../../../src/core/shell-quote.js';
import { testDir } from '../../support/temp-tree.js';

describe('exec wrapper', () => {
  it('returns stdout of a successful command', async () => {
    const r = await run({ description: 'Echoing', argv: ['sh', '-c', 'printf hello'] });
    expect(r.stdout).toBe('hello');
    expect(r.exitCode).toBe(0);
  });

  it('feeds stdin', async () => {
    const r = await run({ description: 'Counting', argv: ['wc', '-c'], stdin: 'abcd' });
    expect(r.stdout.trim()).toBe('4');
  });

  it('fails with the description, a pasteable command line, the exit code and stderr', async () => {
    const err = await run({
      description: 'Creating the root filesystem',
      argv: ['sh', '-c', 'echo "disk is full" >&2; exit 3', 'arg with space'],
      env: { LANG: 'C' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExternalCommandError);
    const e = err as ExternalCommandError;
    expect(e.message).toBe('Creating the root filesystem: command exited with code 3');
    expect(e.exitCode).toBe(3);
    expect(e.stderr).toContain('disk is full');
    expect(e.commandLine).toBe(`LANG=C sh -c 'echo "disk is full" >&2; exit 3' 'arg with space'`);
  });

  it('the printed command line reruns the same command in a shell', async () => {
    const argv = ['printf', '%s|', "it's", 'a b', '$HOME', ''] as const;
    const viaShell = await run({ description: 'Rerunning', argv: ['sh', '-c', commandLine(argv)] });
    const direct = await run({ description: 'Running', argv });
    expect(viaShell.stdout).toBe(direct.stdout);
    expect(direct.stdout).toBe("it's|a b|$HOME||");
  });

  it('accepts declared non-zero exit codes', async () => {
    const r = await run({ description: 'Checking', argv: ['sh', '-c', 'exit 1'], okExitCodes: [1] });
    expect(r.exitCode).toBe(1);
  });

  it('names the Debian package of a missing program', async () => {
    const err = await run({ description: 'Creating the ESP', argv: ['/nonexistent/mkfs.fat', '-F', '32'] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe('Creating the ESP: `/nonexistent/mkfs.fat` is not installed');
    expect((err as UserError).hint).toContain('dosfstools');
  });

  it('reports a timeout as such', async () => {
    const err = await run({ description: 'Waiting', argv: ['sleep', '5'], timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExternalCommandError);
    expect((err as ExternalCommandError).message).toMatch(/killed by timeout/);
  });

  it('keeps only the tail of a long stderr', () => {
    const long = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n');
    const t = tail(long);
    expect(t.split('\n')).toHaveLength(41);
    expect(t.startsWith('…\nline 60')).toBe(true);
    expect(t.endsWith('line 99')).toBe(true);
  });

  it('quotes only what needs quoting', () => {
    expect(quoteArg('/dev/vda')).toBe('/dev/vda');
    expect(quoteArg('')).toBe("''");
    expect(quoteArg('a;b')).toBe("'a;b'");
  });
});

describe('resolveProgram: helpers the tool layer brings', () => {
  const withHelpers = (): { helpers: string; emptyPath: string; pathWithOwn: string } => {
    const root = testDir('resolve-program', { files: { 'helpers/setfattr': '', 'bin/setfattr': '' } });
    const helpers = join(root, 'helpers');
    const own = join(root, 'bin');
    return { helpers, emptyPath: join(root, 'nothing'), pathWithOwn: `${join(root, 'nothing')}:${own}` };
  };

  it('takes the bundled copy when PATH has none', () => {
    const { helpers, emptyPath } = withHelpers();
    expect(resolveProgram('setfattr', helpers, emptyPath)).toBe(join(helpers, 'setfattr'));
  });

  it("prefers the system's own program", () => {
    const { helpers, pathWithOwn } = withHelpers();
    expect(resolveProgram('setfattr', helpers, pathWithOwn)).toBe('setfattr');
  });

  it('leaves other programs and missing helpers to PATH (and so to the "not installed" hint)', () => {
    const { helpers, emptyPath } = withHelpers();
    expect(resolveProgram('sfdisk', helpers, emptyPath)).toBe('sfdisk');
    expect(resolveProgram('getfattr', helpers, emptyPath)).toBe('getfattr');
  });
});
