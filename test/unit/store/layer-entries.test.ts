import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import { normaliseEntryPath, decodeTarName } from '../../../src/store/entry-path.js';
import { LayerIndexBuilder, type TarEntryHeader } from '../../../src/store/layer-entries.js';
import { userErrorOf } from '../../support/user-error.js';

function h(name: string, type: string | null, extra: Partial<TarEntryHeader> = {}): TarEntryHeader {
  return { name, type, linkname: null, mode: 0o755, uid: 0, gid: 0, size: 0, xattrs: [], ...extra };
}

describe('entry path normalisation', () => {
  it('strips leading ./ and / and trailing slashes', () => {
    expect(normaliseEntryPath('./usr/bin/')).toBe('usr/bin');
    expect(normaliseEntryPath('/etc/passwd')).toBe('etc/passwd');
    expect(normaliseEntryPath('.//a/./b')).toBe('a/b');
    expect(normaliseEntryPath('./')).toBe('');
  });

  it('refuses .. anywhere', () => {
    expect(userErrorOf(() => normaliseEntryPath('../etc/passwd')).message).toMatch(/escapes the image root/);
    expect(() => normaliseEntryPath('usr/../../x')).toThrow(UserError);
    expect(() => normaliseEntryPath('/a/..')).toThrow(UserError);
  });

  it('keeps UTF-8 names and refuses other bytes', () => {
    expect(decodeTarName(Buffer.from('café', 'utf8').toString('latin1'), 'entry')).toBe('café');
    expect(() => decodeTarName(Buffer.from([0x61, 0xff]).toString('latin1'), 'entry')).toThrow(/not valid UTF-8/);
  });
});

describe('LayerIndexBuilder', () => {
  it('records whiteouts and opaque markers, never as files', () => {
    const b = new LayerIndexBuilder();
    expect(b.classify(h('etc/', 'directory'))).toMatchObject({ action: 'recorded' });
    expect(b.classify(h('etc/.wh.motd', 'file'))).toEqual({
      action: 'recorded',
      entry: { kind: 'whiteout', path: 'etc/motd' },
    });
    expect(b.classify(h('./opt/.wh..wh..opq', 'file'))).toEqual({
      action: 'recorded',
      entry: { kind: 'opaque', path: 'opt' },
    });
    expect(b.classify(h('.wh.top', 'file'))).toMatchObject({ entry: { kind: 'whiteout', path: 'top' } });
    expect(b.classify(h('x/.wh..wh.plnk', 'directory'))).toMatchObject({ action: 'skipped', why: 'aufs-metadata' });
  });

  it('resolves a hardlink to the same object as its target', () => {
    const b = new LayerIndexBuilder();
    const a = b.classify(h('usr/bin/perl', 'file', { size: 3, mode: 0o755 }));
    expect(a.action).toBe('store-file');
    b.addFile('usr/bin/perl', 'a'.repeat(64), { mode: 0o755, uid: 0, gid: 0, size: 3, xattrs: [] });
    const link = b.classify(h('usr/bin/perl5.36', 'link', { linkname: '/usr/bin/perl' }));
    expect(link).toMatchObject({ action: 'recorded', entry: { kind: 'file', path: 'usr/bin/perl5.36', object: 'a'.repeat(64) } });
    expect(b.files).toBe(2);
  });

  it('refuses a hardlink to a missing target, to a directory, or outside the image', () => {
    const b = new LayerIndexBuilder();
    b.classify(h('d/', 'directory'));
    expect(userErrorOf(() => b.classify(h('x', 'link', { linkname: 'nowhere' }))).message).toMatch(
      /hardlink \/x points to \/nowhere, which is not earlier in the same layer/,
    );
    expect(userErrorOf(() => b.classify(h('y', 'link', { linkname: 'd' }))).message).toMatch(/points to directory \/d/);
    expect(userErrorOf(() => b.classify(h('z', 'link', { linkname: '../../etc/shadow' }))).message).toMatch(
      /hardlink target .* escapes the image root/,
    );
  });

  it('refuses an entry below a symlink of the same layer', () => {
    const b = new LayerIndexBuilder();
    b.classify(h('a', 'symlink', { linkname: '/etc' }));
    const err = userErrorOf(() => b.classify(h('a/b', 'file', { size: 1 })));
    expect(err.message).toMatch(/"a\/b" has a symlinked parent: \/a is a symlink \(to "\/etc"\)/);
    expect(() => b.classify(h('a/.wh.passwd', 'file'))).toThrow(/symlinked parent/);
  });

  it('keeps absolute and relative symlink targets verbatim', () => {
    const b = new LayerIndexBuilder();
    expect(b.classify(h('lib', 'symlink', { linkname: 'usr/lib' }))).toMatchObject({ entry: { target: 'usr/lib' } });
    expect(b.classify(h('x', 'symlink', { linkname: '../../../../etc' }))).toMatchObject({
      entry: { target: '../../../../etc' },
    });
  });

  it('skips device nodes and fifos, and everything under /dev but the directory', () => {
    const b = new LayerIndexBuilder();
    expect(b.classify(h('dev/', 'directory'))).toMatchObject({ action: 'recorded' });
    expect(b.classify(h('dev/null', 'character-device'))).toMatchObject({ action: 'skipped', why: 'under-dev' });
    expect(b.classify(h('dev/foo', 'file', { size: 1 }))).toMatchObject({ action: 'skipped', why: 'under-dev' });
    expect(b.classify(h('run/initctl', 'fifo'))).toMatchObject({ action: 'skipped', why: 'device' });
    expect(b.classify(h('srv/sda', 'block-device'))).toMatchObject({ action: 'skipped', why: 'device' });
    expect(b.skipped).toBe(4);
    expect(b.entries.map((e) => e.path)).toEqual(['dev']);
  });

  it('folds a POSIX ACL into the mode like the kernel', () => {
    // user::rwx group::r-x group:1000:rwx mask::rwx other::r-x
    const acl = Buffer.alloc(4 + 5 * 8);
    acl.writeUInt32LE(2, 0);
    [
      [0x01, 7, 0xffffffff],
      [0x04, 5, 0xffffffff],
      [0x08, 7, 1000],
      [0x10, 7, 0xffffffff],
      [0x20, 5, 0xffffffff],
    ].forEach(([tag, perm, id], i) => {
      acl.writeUInt16LE(tag as number, 4 + i * 8);
      acl.writeUInt16LE(perm as number, 6 + i * 8);
      acl.writeUInt32LE(id as number, 8 + i * 8);
    });
    const b = new LayerIndexBuilder();
    const a = b.classify(
      h('srv/shared', 'file', { mode: 0o755, size: 0, xattrs: [{ name: 'system.posix_acl_access', value: acl }] }),
    );
    expect(a).toMatchObject({ action: 'store-file', meta: { mode: 0o775 } });
  });

  it('refuses unknown entry types', () => {
    expect(() => new LayerIndexBuilder().classify(h('x', null))).toThrow(/unsupported tar type/);
  });
});
