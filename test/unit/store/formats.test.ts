import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import {
  decodeLayerIndex,
  decodeTreeIndex,
  encodeIndex,
  encodeIndexChunks,
  objectIdsOfIndex,
  type LayerEntry,
  type LayerIndexHeader,
} from '../../../src/store/index-format.js';
import { objectHeader, objectIdOf } from '../../../src/store/object-id.js';
import { decodePaxRecords, xattrsFromPax } from '../../../src/store/layer-tar.js';
import { parseXattrDump, renderXattrDump } from '../../../src/store/xattrs.js';
import { placeEntry } from '../../../src/store/checkout.js';
import { formatFsckReport } from '../../../src/store/fsck.js';
import { formatGcSummary } from '../../../src/store/gc.js';

describe('object ids', () => {
  const meta = { mode: 0o644, uid: 0, gid: 0, xattrs: [] };
  it('serialise the header canonically', () => {
    const header = objectHeader({
      mode: 0o4755,
      uid: 1,
      gid: 2,
      size: 3,
      xattrs: [
        { name: 'user.b', value: Buffer.from('2') },
        { name: 'security.capability', value: Buffer.from([0, 1]) },
      ],
    });
    expect(header.toString('latin1')).toBe(
      'bootc-object-v1\nmode=4755\nuid=1\ngid=2\nsize=3\n' +
        'xattr=19:2\nsecurity.capability\x00\x01\n' +
        'xattr=6:1\nuser.b2\n\n',
    );
  });

  it('differ when only the xattrs, mode or owner differ', () => {
    const content = Buffer.from('#!/bin/sh\n');
    const base = objectIdOf(meta, content);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(objectIdOf({ ...meta }, content)).toBe(base);
    expect(objectIdOf({ ...meta, xattrs: [{ name: 'security.capability', value: Buffer.from([1]) }] }, content)).not.toBe(base);
    expect(objectIdOf({ ...meta, mode: 0o755 }, content)).not.toBe(base);
    expect(objectIdOf({ ...meta, uid: 1 }, content)).not.toBe(base);
    expect(objectIdOf(meta, Buffer.from('#!/bin/sh \n'))).not.toBe(base);
  });

  it('do not depend on xattr order', () => {
    const a = { name: 'user.a', value: Buffer.from('1') };
    const b = { name: 'user.b', value: Buffer.from('2') };
    expect(objectIdOf({ ...meta, xattrs: [a, b] }, Buffer.alloc(0))).toBe(objectIdOf({ ...meta, xattrs: [b, a] }, Buffer.alloc(0)));
  });
});

describe('index files', () => {
  const header: LayerIndexHeader = {
    format: 'bootc-store-index',
    version: 1,
    kind: 'layer',
    diffId: 'sha256:' + 'a'.repeat(64),
    stats: { entries: 5, files: 1, objectsWritten: 1, bytesWritten: 3, bytesTotal: 3, skipped: 0 },
  };
  const entries: LayerEntry[] = [
    { kind: 'dir', path: '', mode: 0o755, uid: 0, gid: 0, xattrs: [] },
    { kind: 'file', path: 'usr/bin/ping', object: 'b'.repeat(64), mode: 0o755, uid: 0, gid: 0, size: 3, xattrs: [{ name: 'security.capability', value: Buffer.from([1, 0, 0, 2, 0xff]) }] },
    { kind: 'symlink', path: 'bin', target: 'usr/bin', uid: 0, gid: 0, xattrs: [] },
    { kind: 'whiteout', path: 'etc/motd' },
    { kind: 'opaque', path: 'opt' },
  ];

  it('round-trip every entry kind, binary xattrs included', () => {
    const text = encodeIndex(header, entries);
    expect(text.split('\n')[2]).toBe(`["f","usr/bin/ping","${'b'.repeat(64)}",493,0,0,3,{"security.capability":"AQAAAv8="}]`);
    expect(decodeLayerIndex(text, 'x')).toEqual({ header, entries });
  });

  it('come in chunks of whole lines that join to the whole text', () => {
    const many: LayerEntry[] = Array.from({ length: 30_000 }, (_, i) => ({
      kind: 'file', path: `usr/share/doc/file-${i}`, object: 'c'.repeat(64), mode: 0o644, uid: 0, gid: 0, size: i, xattrs: [],
    }));
    const chunks = [...encodeIndexChunks(header, many)];
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(chunk.endsWith('\n')).toBe(true);
    expect(chunks.join('')).toBe(encodeIndex(header, many));
    expect(decodeLayerIndex(chunks.join(''), 'x').entries).toEqual(many);
  });

  it('give the object ids of their file entries without decoding the rest, checking what they read', () => {
    const text = encodeIndex(header, entries);
    const ids = new Set<string>();
    expect(objectIdsOfIndex(text, 'x', 'layer', ids)).toEqual(header);
    const decoded = decodeLayerIndex(text, 'x').entries.flatMap((e) => (e.kind === 'file' ? [e.object] : []));
    expect([...ids].sort()).toEqual([...new Set(decoded)].sort());
    expect(ids.size).toBeGreaterThan(0);
    expect(() => objectIdsOfIndex(text, 'x', 'tree', new Set())).toThrow(/not a tree index/);
    expect(() => objectIdsOfIndex(text.slice(0, -5), 'x', 'layer', new Set())).toThrow(/truncated/);
    expect(() => objectIdsOfIndex(text.replace('b'.repeat(64), 'B'.repeat(64)), 'x', 'layer', new Set())).toThrow(/line 3\).*malformed/);
    expect(() => objectIdsOfIndex(text.replace('["f"', '{"f"'), 'x', 'layer', new Set())).toThrow(/not JSON/);
  });

  it('refuse a truncated or foreign file with a hint', () => {
    const text = encodeIndex(header, entries);
    expect(() => decodeLayerIndex(text.slice(0, -5), '/s/l.index')).toThrow(/Store index \/s\/l.index is corrupt: it is truncated/);
    expect(() => decodeLayerIndex('{"a":1}\n', 'x')).toThrow(UserError);
    expect(() => decodeTreeIndex(text, 'x')).toThrow(/not a tree index/);
  });
});

describe('PAX records', () => {
  it('keep binary xattr values byte for byte', () => {
    const value = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xff, 0xfe]);
    const record = (key: string, v: Buffer): Buffer => {
      const body = Buffer.concat([Buffer.from(` ${key}=`), v, Buffer.from('\n')]);
      let len = body.length + 2;
      if (String(len).length + body.length !== len) len = body.length + String(len + 1).length;
      return Buffer.concat([Buffer.from(String(len)), body]);
    };
    const buf = Buffer.concat([
      record('path', Buffer.from('usr/bin/ping')),
      record('SCHILY.xattr.security.capability', value),
      record('SCHILY.xattr.security.selinux', Buffer.from('system_u:object_r:bin_t:s0')),
    ]);
    const pax = decodePaxRecords(buf);
    expect(pax['path']).toBe('usr/bin/ping');
    const x = xattrsFromPax(pax);
    expect(x).toHaveLength(1);
    expect(x[0]?.name).toBe('security.capability');
    expect(x[0]?.value.equals(value)).toBe(true);
  });

  it('refuse a malformed record', () => {
    expect(() => decodePaxRecords(Buffer.from('99 path=x\n'))).toThrow(/malformed PAX header/);
  });
});

describe('getfattr dump text', () => {
  it('renders what setfattr --restore reads, quoting odd names, and parses it back', () => {
    const targets = [
      { path: '/r/a b\nc\\d', xattrs: [{ name: 'user.x', value: Buffer.from([0, 255]) }] },
      { path: '/r/none', xattrs: [] },
    ];
    const text = renderXattrDump(targets);
    expect(text).toBe('# file: /r/a b\\012c\\134d\nuser.x=0sAP8=\n\n');
    const back = parseXattrDump(text);
    expect([...back.keys()]).toEqual(['/r/a b\nc\\d']);
    expect(back.get('/r/a b\nc\\d')?.[0]?.value).toEqual(Buffer.from([0, 255]));
  });
});

describe('checkout placement', () => {
  const rules = [
    { path: 'etc', method: undefined, destination: '/d/usr/etc' },
    { path: 'var', method: 'mountpoint' as const, destination: undefined },
    { path: 'etc/secret', method: 'copy' as const, destination: undefined },
    { path: 'tmp', method: 'skip' as const, destination: undefined },
  ];
  it('maps entries to their destination and method', () => {
    expect(placeEntry('usr/bin/ls', '/d', '', 'hardlink', rules)).toEqual({ base: '/d', rel: 'usr/bin/ls', method: 'hardlink', isPlacementRoot: false });
    expect(placeEntry('', '/d', '', 'hardlink', rules)).toMatchObject({ base: '/d', rel: '', isPlacementRoot: true });
    expect(placeEntry('etc', '/d', '', 'hardlink', rules)).toMatchObject({ base: '/d/usr/etc', rel: '', isPlacementRoot: true });
    expect(placeEntry('etc/secret/k', '/d', '', 'hardlink', rules)).toEqual({ base: '/d/usr/etc', rel: 'secret/k', method: 'copy', isPlacementRoot: false });
    expect(placeEntry('var', '/d', '', 'hardlink', rules)).toMatchObject({ base: '/d', rel: 'var', method: 'mountpoint' });
    expect(placeEntry('var/lib/x', '/d', '', 'hardlink', rules)).toBeNull();
    expect(placeEntry('tmp', '/d', '', 'hardlink', rules)).toBeNull();
    expect(placeEntry('etcetera', '/d', '', 'hardlink', rules)).toMatchObject({ base: '/d', rel: 'etcetera' });
  });
  it('a subtree checkout puts the subtree root at the destination', () => {
    expect(placeEntry('etc/fstab', '/e', 'etc', 'copy', [])).toEqual({ base: '/e', rel: 'fstab', method: 'copy', isPlacementRoot: false });
    expect(placeEntry('usr', '/e', 'etc', 'copy', [])).toBeNull();
  });
});

describe('fsck and gc reports', () => {
  it('fsck: a summary line, then one line per problem', () => {
    const text = formatFsckReport({
      objectsChecked: 3,
      bytesChecked: 2_500_000,
      corrupt: [{ object: 'a'.repeat(64), path: '/x', actual: 'b'.repeat(64), reason: 'content or metadata does not match the object id' }],
      missing: [{ object: 'c'.repeat(64), referencedBy: 'image sha256:1' }],
      strays: [],
      ok: false,
    });
    expect(text).toBe(
      'Checked 3 objects (2.5 MB): 1 corrupt, 1 missing\n' +
        `corrupt object ${'a'.repeat(64)}: content or metadata does not match the object id (hashes to ${'b'.repeat(64)})\n` +
        `missing object ${'c'.repeat(64)}, referenced by image sha256:1\n`,
    );
  });
  it('gc: the upstream prune line', () => {
    expect(
      formatGcSummary({ imagesRemoved: ['x'], layersRemoved: ['a', 'b'], objectsRemoved: 9, bytesFreed: 123_456_789, objectsKept: 1, tempFilesRemoved: 0 }),
    ).toBe('Pruned images: 1 (layers: 2, objsize: 123.5 MB)');
  });
});
