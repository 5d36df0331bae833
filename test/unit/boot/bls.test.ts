import { describe, expect, it } from 'vitest';
import { BugError, UserError } from '../../../src/core/errors.js';
import {
  bootOrder,
  entryFileName,
  entryOptions,
  entryTitle,
  newEntryFileName,
  parseBlsEntry,
  parseEntryFileName,
  parseOsRelease,
  renderBlsEntry,
  renderLoaderConf,
} from '../../../src/boot/bls.js';

describe('BLS entry file names with boot counting', () => {
  it('names a new entry with three tries', () => {
    expect(newEntryFileName('default', 'd1')).toBe('bootc-default-d1+3.conf');
  });

  it.each([
    ['bootc-default-d1+3.conf', { stateroot: 'default', deploymentId: 'd1', counter: { triesLeft: 3 } }],
    ['bootc-default-d1+2-1.conf', { stateroot: 'default', deploymentId: 'd1', counter: { triesLeft: 2, triesDone: 1 } }],
    ['bootc-default-d1+0-3.conf', { stateroot: 'default', deploymentId: 'd1', counter: { triesLeft: 0, triesDone: 3 } }],
    ['bootc-default-d1.conf', { stateroot: 'default', deploymentId: 'd1' }],
    ['bootc-my-os-2.conf', { stateroot: 'my-os', deploymentId: '2' }],
    ['bootc-my-os-a1b2.c+1-2.conf', { stateroot: 'my-os', deploymentId: 'a1b2.c', counter: { triesLeft: 1, triesDone: 2 } }],
  ])('%s round-trips', (name, parsed) => {
    expect(parseEntryFileName(name)).toEqual(parsed);
    expect(entryFileName(parsed)).toBe(name);
  });

  it.each(['debian-6.1.conf', 'bootc-d1.conf', 'bootc-default-d1+3.conf.tmp', 'bootc-default-d1+x.conf', 'bootc--d1.conf'])(
    'ignores %s',
    (name) => {
      expect(parseEntryFileName(name)).toBeNull();
    },
  );

  it('refuses names that would not parse back', () => {
    expect(() => entryFileName({ stateroot: 'a+b', deploymentId: 'd1' })).toThrow(UserError);
    expect(() => entryFileName({ stateroot: 'a', deploymentId: 'd-1' })).toThrow(BugError);
  });
});

describe('BLS entry text', () => {
  const entry = {
    title: 'Debian GNU/Linux 12 (bookworm) 1',
    version: '1',
    sortKey: 'bootc',
    linux: '/bootc/d1/vmlinuz',
    initrd: '/bootc/d1/initrd.img',
    options: 'root=UUID=f00d rw bootc.deploy=default/d1',
  };

  it('renders the keys in order', () => {
    expect(renderBlsEntry(entry)).toBe(
      [
        'title Debian GNU/Linux 12 (bookworm) 1',
        'version 1',
        'sort-key bootc',
        'linux /bootc/d1/vmlinuz',
        'initrd /bootc/d1/initrd.img',
        'options root=UUID=f00d rw bootc.deploy=default/d1',
        '',
      ].join('\n'),
    );
  });

  it('parses what it renders, and foreign entries with comments and repeated keys', () => {
    const parsed = parseBlsEntry(renderBlsEntry(entry));
    expect(parsed['title']).toEqual([entry.title]);
    expect(entryOptions(parsed)).toEqual(['root=UUID=f00d', 'rw', 'bootc.deploy=default/d1']);
    const foreign = parseBlsEntry('# comment\ntitle  Other\ninitrd /a\ninitrd /b\noptions a  b\noptions c\n');
    expect(foreign['initrd']).toEqual(['/a', '/b']);
    expect(entryOptions(foreign)).toEqual(['a', 'b', 'c']);
  });

  it('refuses a value with a line break', () => {
    expect(() => renderBlsEntry({ ...entry, options: 'a\nlinux /evil' })).toThrow(BugError);
  });

  it('titles the entry from os-release and the image version', () => {
    const osRelease = parseOsRelease('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n# c\nID=debian\n');
    expect(osRelease['ID']).toBe('debian');
    expect(entryTitle(osRelease, '1')).toBe('Debian GNU/Linux 12 (bookworm) 1');
    expect(entryTitle(parseOsRelease("NAME='My OS'"))).toBe('My OS');
    expect(entryTitle({})).toBe('Linux');
  });
});

describe('loader.conf and the default entry', () => {
  it('points the default at our entries, without an editor', () => {
    expect(renderLoaderConf()).toBe('default bootc-*\ntimeout 3\neditor no\n');
    expect(renderLoaderConf({ timeoutSeconds: 0 })).toContain('timeout 0\n');
  });

  it('orders as systemd-boot: highest version first, exhausted entries last', () => {
    const e = (file: string, version: string) => ({ name: parseEntryFileName(file)!, version, file });
    const order = bootOrder([
      e('bootc-default-d1.conf', '9'),
      e('bootc-default-d3+0-3.conf', '11'),
      e('bootc-default-d2+2-1.conf', '10'),
    ]).map((x) => x.file);
    expect(order).toEqual(['bootc-default-d2+2-1.conf', 'bootc-default-d1.conf', 'bootc-default-d3+0-3.conf']);
  });
});
