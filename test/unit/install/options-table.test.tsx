/**
 * The install options table (src/install/options.ts) drives three shapes: the flags of
 * `install to-disk` and `install to-filesystem`, the answers file (schema and renderer) and
 * the installer's options screen. Each row shows up in every shape it names, and no shape
 * has an option the table does not.
 */
import { render } from 'ink-testing-library';
import yargs, { type Argv } from 'yargs';
import { describe, expect, it } from 'vitest';
import { installCommands, type LazyCommand } from '../../../src/cli/commands.js';
import { parseAnswers, renderAnswers, type InstallAnswers } from '../../../src/install/answers.js';
import { INSTALL_OPTIONS, answersRows, installFlags, installerFields, type InstallVerb } from '../../../src/install/options.js';
import { KeyRouterProvider } from '../../../src/tui/keys.js';
import { OptionsScreen, defaultOptions } from '../../../src/tui/screens/options-screen.js';

const ROWS = Object.entries(INSTALL_OPTIONS) as Array<[string, (typeof INSTALL_OPTIONS)[keyof typeof INSTALL_OPTIONS]]>;
const VERBS: InstallVerb[] = ['to-disk', 'to-filesystem'];

interface DeclaredOptions {
  key: Record<string, unknown>;
  default: Record<string, unknown>;
  string: string[];
  boolean: string[];
  number: string[];
  array: string[];
  choices: Record<string, unknown>;
}

/** The options yargs holds for a verb once its builder ran (getOptions() is public, untyped). */
function declared(verb: InstallVerb): DeclaredOptions {
  const cmd = installCommands.find((c) => String(c.command).startsWith(`${verb} `)) as LazyCommand;
  const y = yargs([]);
  (cmd.builder as (y: Argv) => Argv)(y);
  return (y as unknown as { getOptions(): DeclaredOptions }).getOptions();
}

const flagsOf = (o: DeclaredOptions): string[] => Object.keys(o.key).filter((k) => !/[A-Z]/.test(k) && !['help', 'version'].includes(k));

describe('the table drives the flags of install to-disk and install to-filesystem', () => {
  for (const verb of VERBS) {
    it(`${verb}: every row for it is a flag, and every flag (positionals aside) a row`, () => {
      const o = declared(verb);
      const positionals = verb === 'to-disk' ? ['device'] : ['root-path'];
      const rows = ROWS.filter(([, row]) => 'flag' in row && (row.commands as readonly string[]).includes(verb)).map(([name]) => name);
      expect(flagsOf(o).filter((f) => !positionals.includes(f)).sort()).toEqual([...rows].sort());
      expect(Object.keys(installFlags(verb)).sort()).toEqual([...rows].sort());
    });

    it(`${verb}: each flag has the row's type, default and choices`, () => {
      const o = declared(verb);
      for (const [name, flag] of Object.entries(installFlags(verb))) {
        const f = flag as { type?: string; default?: unknown; choices?: readonly string[]; array?: boolean };
        if (f.type !== undefined) expect(o[f.type as 'string' | 'boolean' | 'number'], `--${name} is a ${f.type}`).toContain(name);
        if (f.array) expect(o.array, `--${name} repeats`).toContain(name);
        if ('default' in f) expect(o.default[name], `--${name}'s default`).toEqual(f.default);
        if (f.choices !== undefined) expect(o.choices[name], `--${name}'s choices`).toEqual(f.choices);
      }
    });
  }

  it('the flags both verbs take are one row each (declared once, the same in both)', () => {
    const toDisk = installFlags('to-disk') as Record<string, unknown>;
    const toFilesystem = installFlags('to-filesystem') as Record<string, unknown>;
    const both = Object.keys(toDisk).filter((k) => k in toFilesystem);
    expect(both.length).toBeGreaterThan(10);
    for (const name of both) expect(toFilesystem[name]).toBe(toDisk[name]);
  });
});

/** An answers document using every key of the table, with the disk chosen by `disk`. */
function fullAnswers(disk: InstallAnswers['disk']): InstallAnswers {
  return {
    source: 'oci:/media/os:v1',
    target: 'quay.io/example/os:latest',
    disk,
    wipe: true,
    filesystem: 'btrfs',
    rootSize: '20G',
    kargs: ['quiet', 'console=ttyS0,115200'],
    rootSshAuthorizedKeys: '/root/.ssh/id_ed25519.pub',
    hostname: 'box1',
    stateroot: 'myos',
    user: { name: 'admin', passwordHash: '$6$salt$hash', groups: ['sudo', 'adm'] },
    finish: 'poweroff',
  };
}

const DISKS: Array<InstallAnswers['disk']> = [
  { by: 'path', path: '/dev/vdb' },
  { by: 'serial', serial: 'WD-1234' },
  { by: 'wwn', wwn: '0x5000c500a0b1c2d3' },
  { by: 'model', model: 'WDC WD10EZEX' },
  { by: 'size', size: 'smallest' },
];

describe('the table drives the answers file', () => {
  it('every answers row is a key the renderer writes and the parser reads back', () => {
    const written = new Set<string>();
    for (const disk of DISKS) {
      const answers = fullAnswers(disk);
      const text = renderAnswers(answers);
      expect(parseAnswers('answers.toml', text)).toEqual(answers);
      for (const section of ['image', 'disk', 'options'] as const) {
        const body = text.split(`[${section}]\n`)[1]!.split('\n\n')[0]!;
        for (const line of body.split('\n').filter((l) => l !== '' && !l.startsWith('#'))) written.add(`${section}.${line.split(' = ')[0]}`);
      }
    }
    const rows = (['image', 'disk', 'options'] as const).flatMap((section) => answersRows(section).map((row) => `${section}.${row.key}`));
    expect([...written].sort()).toEqual(rows.sort());
  });

  it('a key no row declares is refused, in every section', () => {
    for (const [section, extra] of [['image', 'digest = "x"'], ['disk', 'label = "x"'], ['options', 'kargz = []']] as const) {
      const text = renderAnswers(fullAnswers(DISKS[0]!)).replace(`[${section}]\n`, `[${section}]\n${extra}\n`);
      expect(() => parseAnswers('a.toml', text)).toThrow(/unknown key/);
    }
  });

  it("a row's check refuses a bad value in the file", () => {
    const bad: Record<string, string> = { 'root-size': 'huge', hostname: 'not a host', user: 'Admin', 'user-password-hash': 'plain' };
    for (const row of answersRows('options').filter((r) => r.check !== undefined)) {
      const text = renderAnswers(fullAnswers(DISKS[0]!)).replace(new RegExp(`^${row.key} = .*$`, 'm'), `${row.key} = ${JSON.stringify(bad[row.key])}`);
      expect(() => parseAnswers('a.toml', text), row.key).toThrow();
    }
  });
});

describe('the table drives the installer options screen', () => {
  const defaults = { filesystem: 'ext4' as const, configKargs: [], digest: 'sha256:0' };

  it('every row with a field is on the screen, in the table order, with its label', () => {
    const fields = installerFields();
    expect(fields.map((f) => f.name)).toEqual(ROWS.filter(([, row]) => 'tui' in row).map(([name]) => name));
    const values = defaultOptions(defaults);
    for (const f of fields) expect(values).toHaveProperty(f.field);
    const r = render(
      <KeyRouterProvider>
        <OptionsScreen values={values} defaults={defaults} error={null} onChange={() => undefined} onSubmit={() => undefined} onBack={() => undefined} />
      </KeyRouterProvider>,
    );
    const frame = r.lastFrame() ?? '';
    const at = fields.map((f) => frame.indexOf(f.label));
    expect(at.every((i) => i >= 0), frame).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    r.unmount();
  });
});
