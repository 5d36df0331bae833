import { describe, expect, it } from 'vitest';
import { parseOsRelease } from '../../../src/boot/bls.js';
import { newUkiFileName, parseUkiFileName, staleUkiFileNames, ukiFileName, ukiOsRelease } from '../../../src/boot/uki-entry.js';

describe('Type #2 (UKI) file names', () => {
  it('names a new UKI like its Type #1 entry, with three tries and .efi', () => {
    expect(newUkiFileName('default', 'b346864b5b29.0')).toBe('bootc-default-b346864b5b29.0+3.efi');
    expect(ukiFileName({ stateroot: 'my-os', deploymentId: 'd1' })).toBe('bootc-my-os-d1.efi');
  });

  it.each([
    ['bootc-default-d1+3.efi', { stateroot: 'default', deploymentId: 'd1', counter: { triesLeft: 3 } }],
    ['bootc-my-os-d1+2-1.efi', { stateroot: 'my-os', deploymentId: 'd1', counter: { triesLeft: 2, triesDone: 1 } }],
    ['bootc-default-d1.efi', { stateroot: 'default', deploymentId: 'd1' }],
  ])('parses %s', (name, parsed) => {
    expect(parseUkiFileName(name)).toEqual(parsed);
  });

  it.each(['bootc-default-d1+3.conf', 'debian-6.1.efi', 'bootc-default-d1+3.efi.tmp', 'bootc-default-d1.EFI'])('ignores %s', (name) => {
    expect(parseUkiFileName(name)).toBeNull();
  });
});

describe('the .osrel of an assembled UKI', () => {
  const image = [
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"',
    'NAME="Debian GNU/Linux"',
    'VERSION_ID="12"',
    'ID=debian',
    'IMAGE_ID=fixture',
    'IMAGE_VERSION=7',
    '',
  ].join('\n');

  it('carries our sort key and boot order, where systemd-boot reads them, and the menu title', () => {
    const fields = parseOsRelease(ukiOsRelease(image, { title: 'Debian GNU/Linux 12 (bookworm) 1', bootOrder: 4 }));
    expect(fields['IMAGE_ID']).toBe('bootc');
    expect(fields['IMAGE_VERSION']).toBe('4');
    expect(fields['PRETTY_NAME']).toBe('Debian GNU/Linux 12 (bookworm) 1');
    expect(fields['ID']).toBe('debian');
    expect(fields['VERSION_ID']).toBe('12');
  });

  it('keeps one value per key', () => {
    const text = ukiOsRelease(image, { title: 'T', bootOrder: 1 });
    expect(text.match(/^IMAGE_ID=/gm)).toHaveLength(1);
    expect(text.match(/^IMAGE_VERSION=/gm)).toHaveLength(1);
    expect(text.match(/^PRETTY_NAME=/gm)).toHaveLength(1);
  });

  it('quotes a title with shell-special characters so os-release parsers get it back', () => {
    const title = 'OS "x" $HOME `y` \\z';
    expect(parseOsRelease(ukiOsRelease(image, { title, bootOrder: 1 }))['PRETTY_NAME']).toBe(title);
  });

  it('refuses a boot order that is not a whole number', () => {
    expect(() => ukiOsRelease(image, { title: 'T', bootOrder: 1.5 })).toThrow(RangeError);
  });
});

describe('stale UKIs', () => {
  it('lists our UKIs of deployments not kept, whatever their boot counter; foreign files stay', () => {
    const names = [
      'bootc-default-a.0+3.efi',
      'bootc-default-b.0.efi',
      'bootc-default-c.0+0-3.efi',
      'bootc-other-a.0.efi',
      'debian-6.1.efi',
      'bootc-default-c.0+3.efi.tmp',
    ];
    expect(staleUkiFileNames(names, [{ stateroot: 'default', deploymentId: 'a.0' }, { stateroot: 'default', deploymentId: 'b.0' }])).toEqual([
      'bootc-default-c.0+0-3.efi',
      'bootc-other-a.0.efi',
    ]);
  });
});
