import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import { bootsUki, sealedUkiPaths } from '../../../src/uki/sealed.js';

describe('sealed UKIs in an image', () => {
  it('finds /usr/lib/modules/<kver>/<kver>.efi first, then /boot/EFI/Linux/*.efi', () => {
    expect(
      sealedUkiPaths([
        'boot/EFI/Linux/os.efi',
        'usr/lib/modules/6.1.0/6.1.0.efi',
        'usr/lib/modules/6.1.0/vmlinuz',
        'usr/lib/modules/6.1.0/other.efi',
        'usr/lib/modules/6.1.0/sub/6.1.0.efi',
        'boot/EFI/Linux/sub/x.efi',
      ]),
    ).toEqual(['usr/lib/modules/6.1.0/6.1.0.efi', 'boot/EFI/Linux/os.efi']);
  });
});

describe('whether a deployment boots a UKI', () => {
  const plain = [{ kind: 'file', path: 'usr/lib/modules/k/vmlinuz' }];
  const sealed = [...plain, { kind: 'file', path: 'usr/lib/modules/k/k.efi' }];
  const signing = { key: 'k.pem', cert: 'c.pem' };

  it('with --uki, or when the image ships one', () => {
    expect(bootsUki({}, plain)).toBe(false);
    expect(bootsUki({ uki: true }, plain)).toBe(true);
    expect(bootsUki({}, sealed)).toBe(true);
  });

  it('refuses signing keys for a Type #1 boot, naming --uki', () => {
    expect(() => bootsUki({ signing }, plain)).toThrow(UserError);
    expect(() => bootsUki({ signing }, plain)).toThrow(/--sign-key/);
    expect(bootsUki({ signing, uki: true }, plain)).toBe(true);
  });

  it('ignores a directory that happens to be named like a UKI', () => {
    expect(bootsUki({}, [...plain, { kind: 'dir', path: 'usr/lib/modules/k/k.efi' }])).toBe(false);
  });
});
