/**
 * The CLI parser as yargs builds it from src/cli/commands.ts, with each verb's handler
 * replaced by one that records its arguments: every repeatable flag takes exactly one value
 * per use, so a positional after it stays a positional (upstream's clap flags do the same).
 */
import yargs, { type Argv } from 'yargs';
import { describe, expect, it } from 'vitest';
import { parseWith as parse } from '../../support/cli-parse.js';
import { commands, containerCommands, imageCommands, installCommands, type LazyCommand } from '../../../src/cli/commands.js';

const verbName = (cmd: LazyCommand): string => String(cmd.command).split(' ')[0]!;
const find = (list: LazyCommand[], name: string): LazyCommand => list.find((c) => verbName(c) === name)!;


/** The flags a command declares as arrays: the repeatable ones. */
function repeatableFlags(cmd: LazyCommand): string[] {
  const y = yargs([]);
  (cmd.builder as (y: Argv) => Argv)(y);
  // getOptions() is public in yargs but missing from its types; camelCase aliases left out.
  const declared = (y as unknown as { getOptions(): { array: string[] } }).getOptions().array;
  return [...new Set(declared)].filter((k) => !/[A-Z]/.test(k));
}

interface Case {
  verb: LazyCommand;
  /** Arguments the verb needs besides the flag under test, placed after it. */
  rest: string[];
  /** The positional and its value, which must survive the flag before it. */
  positional?: [string, string];
}

const CASES: Record<string, Case> = {
  'image build-disk': { verb: find(imageCommands, 'build-disk'), rest: ['oci:/srv/os:v1'], positional: ['image', 'oci:/srv/os:v1'] },
  'install to-disk': { verb: find(installCommands, 'to-disk'), rest: ['/dev/vdb'], positional: ['device', '/dev/vdb'] },
  'install to-filesystem': { verb: find(installCommands, 'to-filesystem'), rest: ['/run/target'], positional: ['rootPath', '/run/target'] },
  'container lint': { verb: find(containerCommands, 'lint'), rest: [] },
  'container ukify': { verb: find(containerCommands, 'ukify'), rest: ['--output', '/out/uki.efi'] },
};

/** A value each flag accepts. */
const VALUE: Record<string, string> = { type: 'raw', karg: 'luks.uuid=U', 'karg-delete': 'quiet', skip: 'var-log' };

const table = Object.entries(CASES).flatMap(([name, c]) => repeatableFlags(c.verb).map((flag) => ({ name, flag, ...c })));

describe('repeatable flags take one value each', () => {
  it('the table covers every repeatable flag of install, build-disk and container', () => {
    expect(table.map((t) => `${t.name} --${t.flag}`).sort()).toEqual([
      'container lint --skip',
      'container ukify --karg',
      'image build-disk --karg',
      'image build-disk --type',
      'install to-disk --karg',
      'install to-disk --karg-delete',
      'install to-filesystem --karg',
      'install to-filesystem --karg-delete',
    ]);
  });

  for (const t of table) {
    const value = VALUE[t.flag]!;
    it(`${t.name} --${t.flag} ${value} ${t.rest.join(' ')}: one value, the rest untouched`, async () => {
      const args = await parse(t.verb, [verbName(t.verb), `--${t.flag}`, value, ...t.rest]);
      expect(args[t.flag]).toEqual([value]);
      if (t.positional) expect(args[t.positional[0]]).toBe(t.positional[1]);
    });

    it(`${t.name} --${t.flag} twice collects both`, async () => {
      const second = t.flag === 'type' ? 'qcow2' : `${value}2`;
      const args = await parse(t.verb, [verbName(t.verb), `--${t.flag}`, value, ...t.rest, `--${t.flag}`, second]);
      expect(args[t.flag]).toEqual([value, second]);
    });

    it(`${t.name} --${t.flag} with no value is a usage error`, async () => {
      await expect(parse(t.verb, [verbName(t.verb), ...t.rest, `--${t.flag}`])).rejects.toThrow(`Not enough arguments following: ${t.flag}`);
    });
  }

  it('without a positional after it, a second word is an unknown argument, not a second value', async () => {
    await expect(parse(find(containerCommands, 'lint'), ['lint', '--skip', 'var-log', 'extra'])).rejects.toThrow(/Unknown argument: extra/);
  });
});

describe('bootc update and upgrade --tag', () => {
  const upgrade = find(commands, 'upgrade');
  it('update is upgrade', async () => {
    expect(await parse(upgrade, ['update', '--check'])).toMatchObject({ check: true });
  });
  it('--tag takes a tag', async () => {
    expect(await parse(upgrade, ['upgrade', '--tag', 'v2'])).toMatchObject({ tag: 'v2' });
    await expect(parse(upgrade, ['upgrade', '--tag'])).rejects.toThrow(/Not enough arguments following: tag/);
  });
});

describe('build-disk --no-default-kernel-args and --config -', () => {
  const buildDisk = find(imageCommands, 'build-disk');
  it('defaults to bib\'s kernel arguments and leaves them out when asked', async () => {
    expect(await parse(buildDisk, ['build-disk', 'img'])).toMatchObject({ defaultKernelArgs: true });
    expect(await parse(buildDisk, ['build-disk', '--no-default-kernel-args', 'img'])).toMatchObject({ defaultKernelArgs: false, image: 'img' });
  });
  it('--config - is stdin, not a positional', async () => {
    expect(await parse(buildDisk, ['build-disk', '--config', '-', 'img'])).toMatchObject({ config: '-', image: 'img' });
  });
});
