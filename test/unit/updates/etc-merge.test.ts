import { describe, expect, it } from 'vitest';
import {
  describeEtcConflict,
  planEtcMerge,
  type EtcMergePlan,
  type EtcNode,
  type EtcTree,
} from '../../../src/updates/etc-merge.js';
import { BugError } from '../../../src/core/errors.js';

// Trees are written as { path: node }; the helpers keep the tables readable.
const file = (content: string, extra: Partial<{ mode: number; uid: number; gid: number; xattr: string }> = {}): EtcNode => ({
  kind: 'file',
  contentId: content,
  mode: extra.mode ?? 0o644,
  uid: extra.uid ?? 0,
  gid: extra.gid ?? 0,
  xattrs: extra.xattr === undefined ? [] : [{ name: 'user.tag', value: Buffer.from(extra.xattr) }],
});
const dir = (extra: Partial<{ mode: number; uid: number; gid: number; xattr: string }> = {}): EtcNode => ({
  kind: 'dir',
  mode: extra.mode ?? 0o755,
  uid: extra.uid ?? 0,
  gid: extra.gid ?? 0,
  xattrs: extra.xattr === undefined ? [] : [{ name: 'user.tag', value: Buffer.from(extra.xattr) }],
});
const link = (target: string, extra: Partial<{ uid: number; gid: number }> = {}): EtcNode => ({
  kind: 'symlink',
  target,
  uid: extra.uid ?? 0,
  gid: extra.gid ?? 0,
});

const tree = (entries: Record<string, EtcNode>): EtcTree => new Map([['', dir()], ...Object.entries(entries)]);

/** The plan as `path <- source` lines and conflict lines, easy to compare in a table. */
function summary(plan: EtcMergePlan): { result: string[]; conflicts: string[] } {
  return {
    result: plan.entries.filter((e) => e.path !== '').map((e) => `${e.path} <- ${e.source === 'current' ? 'local' : 'image'}`),
    conflicts: plan.conflicts.map((c) => `${c.path}: ${c.kind}, kept ${c.kept}`),
  };
}

interface Case {
  name: string;
  old: Record<string, EtcNode>;
  next: Record<string, EtcNode>;
  current: Record<string, EtcNode>;
  result: string[];
  conflicts?: string[];
}

const cases: Case[] = [
  // One side changes.
  { name: 'nothing changed', old: { a: file('1') }, next: { a: file('1') }, current: { a: file('1') }, result: ['a <- image'] },
  { name: 'image changed a file', old: { a: file('1') }, next: { a: file('2') }, current: { a: file('1') }, result: ['a <- image'] },
  { name: 'image added a file', old: {}, next: { a: file('1') }, current: {}, result: ['a <- image'] },
  { name: 'image removed an untouched file', old: { a: file('1') }, next: {}, current: { a: file('1') }, result: [] },
  { name: 'user changed a file', old: { a: file('1') }, next: { a: file('1') }, current: { a: file('2') }, result: ['a <- local'] },
  { name: 'user added a file', old: {}, next: {}, current: { a: file('1') }, result: ['a <- local'] },
  { name: 'user deleted a file', old: { a: file('1') }, next: { a: file('1') }, current: {}, result: [] },

  // Both sides change.
  {
    name: 'both changed a file differently',
    old: { a: file('1') },
    next: { a: file('2') },
    current: { a: file('3') },
    result: ['a <- local'],
    conflicts: ['a: both-modified, kept local'],
  },
  { name: 'both made the same change', old: { a: file('1') }, next: { a: file('2') }, current: { a: file('2') }, result: ['a <- local'] },
  {
    name: 'both added a file differently',
    old: {},
    next: { a: file('1') },
    current: { a: file('2') },
    result: ['a <- local'],
    conflicts: ['a: both-added, kept local'],
  },
  { name: 'both added the same file', old: {}, next: { a: file('1') }, current: { a: file('1') }, result: ['a <- local'] },
  {
    name: 'user changed a file the image removed',
    old: { a: file('1') },
    next: {},
    current: { a: file('2') },
    result: ['a <- local'],
    conflicts: ['a: image-removed, kept local'],
  },
  {
    name: 'user deleted a file the image changed',
    old: { a: file('1') },
    next: { a: file('2') },
    current: {},
    result: [],
    conflicts: ['a: local-removed, kept deleted'],
  },
  { name: 'both deleted a file', old: { a: file('1') }, next: {}, current: {}, result: [] },

  // Metadata-only changes count as changes.
  {
    name: 'permission-only local change wins over an image content change',
    old: { a: file('1') },
    next: { a: file('2') },
    current: { a: file('1', { mode: 0o600 }) },
    result: ['a <- local'],
    conflicts: ['a: both-modified, kept local'],
  },
  {
    name: 'permission-only local change, image untouched',
    old: { a: file('1') },
    next: { a: file('1') },
    current: { a: file('1', { mode: 0o600 }) },
    result: ['a <- local'],
  },
  {
    name: 'permission-only image change reaches an untouched file',
    old: { a: file('1') },
    next: { a: file('1', { mode: 0o640 }) },
    current: { a: file('1') },
    result: ['a <- image'],
  },
  {
    name: 'ownership-only local change',
    old: { a: file('1') },
    next: { a: file('2') },
    current: { a: file('1', { gid: 42 }) },
    result: ['a <- local'],
    conflicts: ['a: both-modified, kept local'],
  },
  {
    name: 'xattr-only local change',
    old: { a: file('1') },
    next: { a: file('2') },
    current: { a: file('1', { xattr: 'x' }) },
    result: ['a <- local'],
    conflicts: ['a: both-modified, kept local'],
  },

  // Symlinks.
  { name: 'image retargeted a symlink', old: { l: link('x') }, next: { l: link('y') }, current: { l: link('x') }, result: ['l <- image'] },
  { name: 'user retargeted a symlink', old: { l: link('x') }, next: { l: link('x') }, current: { l: link('z') }, result: ['l <- local'] },
  {
    name: 'both retargeted a symlink differently',
    old: { l: link('x') },
    next: { l: link('y') },
    current: { l: link('z') },
    result: ['l <- local'],
    conflicts: ['l: both-modified, kept local'],
  },
  {
    name: 'user replaced a symlink with a file the image retargeted',
    old: { l: link('x') },
    next: { l: link('y') },
    current: { l: file('1') },
    result: ['l <- local'],
    conflicts: ['l: type, kept local'],
  },
  {
    name: 'user replaced a file with a symlink, image untouched',
    old: { a: file('1') },
    next: { a: file('1') },
    current: { a: link('/usr/share/a') },
    result: ['a <- local'],
  },

  // Directories.
  {
    name: 'image added a directory with files',
    old: {},
    next: { d: dir(), 'd/x': file('1') },
    current: {},
    result: ['d <- image', 'd/x <- image'],
  },
  {
    name: 'children decided one by one inside an untouched directory',
    old: { d: dir(), 'd/a': file('1'), 'd/b': file('1'), 'd/c': file('1') },
    next: { d: dir(), 'd/a': file('2'), 'd/b': file('2'), 'd/c': file('1') },
    current: { d: dir(), 'd/a': file('1'), 'd/b': file('3'), 'd/c': file('3'), 'd/new': file('4') },
    result: ['d <- image', 'd/a <- image', 'd/b <- local', 'd/c <- local', 'd/new <- local'],
    conflicts: ['d/b: both-modified, kept local'],
  },
  {
    name: 'user changed a directory mode; image content below still arrives',
    old: { d: dir(), 'd/a': file('1') },
    next: { d: dir(), 'd/a': file('2'), 'd/b': file('1') },
    current: { d: dir({ mode: 0o700 }), 'd/a': file('1') },
    result: ['d <- local', 'd/a <- image', 'd/b <- image'],
  },
  {
    name: 'both changed a directory mode',
    old: { d: dir() },
    next: { d: dir({ mode: 0o750 }) },
    current: { d: dir({ mode: 0o700 }) },
    result: ['d <- local'],
    conflicts: ['d: both-modified, kept local'],
  },
  {
    name: 'user changed a directory mode, image removed the directory',
    old: { d: dir(), 'd/a': file('1') },
    next: {},
    current: { d: dir({ mode: 0o700 }), 'd/a': file('1') },
    result: ['d <- local'],
    conflicts: ['d: image-removed, kept local'],
  },
  {
    name: 'user deleted a directory whose image content changed',
    old: { d: dir(), 'd/a': file('1') },
    next: { d: dir(), 'd/a': file('2'), 'd/b': file('1') },
    current: {},
    result: [],
    conflicts: ['d: local-removed, kept deleted'],
  },
  {
    name: 'user deleted a directory the image did not touch',
    old: { d: dir(), 'd/a': file('1'), 'd/e': dir(), 'd/e/f': file('1') },
    next: { d: dir(), 'd/a': file('1'), 'd/e': dir(), 'd/e/f': file('1') },
    current: {},
    result: [],
  },
  {
    name: 'nested paths under a locally deleted directory stay deleted',
    old: { d: dir(), 'd/e': dir(), 'd/e/f': file('1') },
    next: { d: dir(), 'd/e': dir(), 'd/e/f': file('2'), 'd/e/g': file('1'), 'd/h': dir() },
    current: {},
    result: [],
    conflicts: ['d: local-removed, kept deleted'],
  },
  {
    name: 'user deleted one file inside a directory',
    old: { d: dir(), 'd/a': file('1'), 'd/b': file('1') },
    next: { d: dir(), 'd/a': file('2'), 'd/b': file('2') },
    current: { d: dir(), 'd/b': file('1') },
    result: ['d <- image', 'd/b <- image'],
    conflicts: ['d/a: local-removed, kept deleted'],
  },

  // Type changes between file and directory.
  {
    name: 'local file where the image now has a directory',
    old: { a: file('1') },
    next: { a: dir(), 'a/x': file('1') },
    current: { a: file('2') },
    result: ['a <- local'],
    conflicts: ['a: type, kept local'],
  },
  {
    name: 'untouched file becomes the image directory',
    old: { a: file('1') },
    next: { a: dir(), 'a/x': file('1') },
    current: { a: file('1') },
    result: ['a <- image', 'a/x <- image'],
  },
  {
    name: 'user replaced a directory with a file, image changed the directory',
    old: { d: dir(), 'd/a': file('1') },
    next: { d: dir(), 'd/a': file('2') },
    current: { d: file('mine') },
    result: ['d <- local'],
    conflicts: ['d: type, kept local'],
  },
  {
    name: 'user replaced a directory with a file, image untouched',
    old: { d: dir(), 'd/a': file('1') },
    next: { d: dir(), 'd/a': file('1') },
    current: { d: file('mine') },
    result: ['d <- local'],
  },
  {
    name: 'user replaced a file with a directory, image changed the file',
    old: { a: file('1') },
    next: { a: file('2') },
    current: { a: dir(), 'a/x': file('1') },
    result: ['a <- local', 'a/x <- local'],
    conflicts: ['a: type, kept local'],
  },
  {
    name: 'image replaced an untouched directory with a file',
    old: { d: dir(), 'd/a': file('1') },
    next: { d: file('2') },
    current: { d: dir(), 'd/a': file('1') },
    result: ['d <- image'],
  },
  {
    name: 'image replaced a directory with a file, user changed a file in it',
    old: { d: dir(), 'd/a': file('1'), 'd/b': file('1') },
    next: { d: file('2') },
    current: { d: dir(), 'd/a': file('9'), 'd/b': file('1') },
    result: ['d <- local', 'd/a <- local'],
    conflicts: ['d: type, kept local', 'd/a: image-removed, kept local'],
  },
  {
    name: 'image removed a directory holding a file the user added',
    old: { d: dir(), 'd/a': file('1') },
    next: {},
    current: { d: dir(), 'd/a': file('1'), 'd/mine': file('2') },
    result: ['d <- local', 'd/mine <- local'],
  },
  {
    name: 'both added a path, one as a directory',
    old: {},
    next: { p: dir(), 'p/x': file('1') },
    current: { p: file('1') },
    result: ['p <- local'],
    conflicts: ['p: type, kept local'],
  },
  {
    name: 'both added a directory: contents merge',
    old: {},
    next: { p: dir(), 'p/x': file('1'), 'p/y': file('1') },
    current: { p: dir(), 'p/y': file('2'), 'p/z': file('3') },
    result: ['p <- local', 'p/x <- image', 'p/y <- local', 'p/z <- local'],
    conflicts: ['p/y: both-added, kept local'],
  },
];

describe('planEtcMerge', () => {
  it.each(cases)('$name', (c) => {
    const plan = planEtcMerge({ oldDefault: tree(c.old), newDefault: tree(c.next), current: tree(c.current) });
    expect(summary(plan)).toEqual({ result: c.result, conflicts: c.conflicts ?? [] });
  });

  it('lists the image paths the merge leaves out', () => {
    const plan = planEtcMerge({
      oldDefault: tree({ a: file('1'), d: dir(), 'd/x': file('1') }),
      newDefault: tree({ a: file('2'), d: dir(), 'd/x': file('2'), 'd/y': file('1') }),
      current: tree({ a: file('3') }),
    });
    expect(plan.removed).toEqual(['d', 'd/x', 'd/y']);
  });

  it('keeps /etc itself: its metadata follows the same rule', () => {
    const plan = planEtcMerge({
      oldDefault: new Map([['', dir()]]),
      newDefault: new Map([['', dir({ mode: 0o750 })]]),
      current: new Map([['', dir()]]),
    });
    expect(plan.entries).toEqual([{ path: '', source: 'newDefault', node: dir({ mode: 0o750 }) }]);
  });

  it('emits parents before their children', () => {
    const plan = planEtcMerge({
      oldDefault: tree({}),
      newDefault: tree({ z: dir(), 'z/a': dir(), 'z/a/b': file('1'), a: file('1') }),
      current: tree({ m: dir(), 'm/n': file('1') }),
    });
    const order = plan.entries.map((e) => e.path);
    for (const [i, p] of order.entries()) {
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      if (p !== '') expect(order.indexOf(parent)).toBeLessThan(i);
    }
    expect(order).toHaveLength(7);
  });

  it('refuses a tree that lists a path without its parent directory (a scanner bug)', () => {
    expect(() =>
      planEtcMerge({ oldDefault: tree({ 'd/a': file('1') }), newDefault: tree({}), current: tree({}) }),
    ).toThrow(BugError);
  });

  it('describes conflicts in the words of the journal', () => {
    const plan = planEtcMerge({
      oldDefault: tree({ a: file('1'), b: file('1') }),
      newDefault: tree({ a: dir(), b: file('2') }),
      current: tree({ a: file('2') }),
    });
    expect(plan.conflicts.map(describeEtcConflict)).toEqual([
      '/etc/a: local file where the new image has a directory; local version kept',
      '/etc/b: deleted locally, changed in the new image; stays deleted',
    ]);
  });
});
