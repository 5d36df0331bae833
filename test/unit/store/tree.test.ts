import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import type { LayerEntry, TreeEntry } from '../../../src/store/index-format.js';
import { mergeLayers, summariseTree } from '../../../src/store/tree.js';

const O1 = '1'.repeat(64);
const O2 = '2'.repeat(64);
const O3 = '3'.repeat(64);

const dir = (path: string, mode = 0o755, uid = 0): LayerEntry => ({ kind: 'dir', path, mode, uid, gid: 0, xattrs: [] });
const file = (path: string, object = O1, size = 10): LayerEntry => ({
  kind: 'file',
  path,
  object,
  mode: 0o644,
  uid: 0,
  gid: 0,
  size,
  xattrs: [],
});
const link = (path: string, target: string): LayerEntry => ({ kind: 'symlink', path, target, uid: 0, gid: 0, xattrs: [] });
const wh = (path: string): LayerEntry => ({ kind: 'whiteout', path });
const opq = (path: string): LayerEntry => ({ kind: 'opaque', path });

const paths = (t: TreeEntry[]): string[] => t.map((e) => e.path);
const at = (t: TreeEntry[], p: string): TreeEntry | undefined => t.find((e) => e.path === p);

describe('mergeLayers', () => {
  it('puts parents before children, siblings sorted, root first', () => {
    const t = mergeLayers([{ diffId: 'l1', entries: [file('b/z'), dir('a'), file('a/y'), file('a/x')] }]);
    expect(paths(t)).toEqual(['', 'a', 'a/x', 'a/y', 'b', 'b/z']);
    expect(at(t, 'b')).toMatchObject({ kind: 'dir', mode: 0o755, uid: 0 });
  });

  it('a whiteout deletes the lower path and its subtree', () => {
    const t = mergeLayers([
      { diffId: 'l1', entries: [dir('etc'), file('etc/motd'), dir('opt'), file('opt/a/b')] },
      { diffId: 'l2', entries: [wh('etc/motd'), wh('opt/a')] },
    ]);
    expect(paths(t)).toEqual(['', 'etc', 'opt']);
  });

  it('a whiteout applies to lower layers only, wherever it sits in the tar', () => {
    const t = mergeLayers([
      { diffId: 'l1', entries: [file('x', O1)] },
      { diffId: 'l2', entries: [file('x', O2), wh('x')] },
    ]);
    expect(at(t, 'x')).toMatchObject({ kind: 'file', object: O2 });
  });

  it('an opaque directory hides all lower content but keeps what its own layer adds', () => {
    const t = mergeLayers([
      { diffId: 'l1', entries: [dir('a'), dir('a/b'), dir('a/b/c'), file('a/b/c/bar'), file('a/keep')] },
      { diffId: 'l2', entries: [dir('a'), dir('a/b'), dir('a/b/c'), file('a/b/c/foo'), opq('a')] },
    ]);
    expect(paths(t)).toEqual(['', 'a', 'a/b', 'a/b/c', 'a/b/c/foo']);
  });

  it('a later layer wins; a directory over a directory keeps the children', () => {
    const t = mergeLayers([
      { diffId: 'l1', entries: [dir('usr', 0o755), file('usr/f', O1)] },
      { diffId: 'l2', entries: [dir('usr', 0o700, 5), file('usr/f', O2)] },
    ]);
    expect(at(t, 'usr')).toMatchObject({ mode: 0o700, uid: 5 });
    expect(at(t, 'usr/f')).toMatchObject({ object: O2 });
  });

  it('a file replaced by a directory across layers', () => {
    const t = mergeLayers([
      { diffId: 'l1', entries: [file('thing', O1)] },
      { diffId: 'l2', entries: [dir('thing'), file('thing/inside', O2)] },
    ]);
    expect(at(t, 'thing')).toMatchObject({ kind: 'dir' });
    expect(at(t, 'thing/inside')).toMatchObject({ object: O2 });
  });

  it('a directory replaced by a symlink drops the lower subtree', () => {
    const t = mergeLayers([
      { diffId: 'l1', entries: [dir('home'), dir('home/u'), file('home/u/.bashrc')] },
      { diffId: 'l2', entries: [link('home', 'var/home')] },
    ]);
    expect(paths(t)).toEqual(['', 'home']);
    expect(at(t, 'home')).toMatchObject({ kind: 'symlink', target: 'var/home' });
  });

  it('refuses an entry below a symlink from a lower layer (symlinked parent)', () => {
    let err: unknown;
    try {
      mergeLayers([
        { diffId: 'sha256:low', entries: [link('a', '/etc')] },
        { diffId: 'sha256:up', entries: [file('a/b')] },
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(
      'Layer sha256:up entry /a/b has a symlinked parent: /a is a symlink to "/etc" in a lower layer',
    );
  });

  it('refuses an entry below a regular file', () => {
    expect(() => mergeLayers([{ diffId: 'l1', entries: [file('f'), file('f/g')] }])).toThrow(/which is a regular file/);
  });

  it('a whiteout through a lower symlink deletes nothing', () => {
    const t = mergeLayers([
      { diffId: 'l1', entries: [dir('etc'), file('etc/passwd'), link('a', 'etc')] },
      { diffId: 'l2', entries: [wh('a/passwd')] },
    ]);
    expect(at(t, 'etc/passwd')).toBeDefined();
  });

  it('the root directory takes the metadata of a "./" entry', () => {
    const t = mergeLayers([{ diffId: 'l1', entries: [dir('', 0o555)] }]);
    expect(t).toEqual([{ kind: 'dir', path: '', mode: 0o555, uid: 0, gid: 0, xattrs: [] }]);
  });

  it('summarises files and distinct objects', () => {
    const t = mergeLayers([{ diffId: 'l1', entries: [file('a', O1, 10), file('b', O1, 10), file('c', O3, 5), link('l', 'a')] }]);
    expect(summariseTree(t)).toEqual({ dirs: 1, files: 3, symlinks: 1, fileBytes: 25, objectBytes: 15, objects: 2 });
  });
});
