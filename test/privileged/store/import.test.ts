import { beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, stat, writeFile, symlink } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { InterruptedError, UserError, unwrapContext } from '../../../src/core/errors.js';
import { importLayer, importLayers, isLayerImported, loadLayerIndex } from '../../../src/store/layer-import.js';
import { writeImageTree, loadImageTree } from '../../../src/store/tree.js';
import { checkoutTree } from '../../../src/store/checkout.js';
import { fsckStore } from '../../../src/store/fsck.js';
import { gcStore } from '../../../src/store/gc.js';
import { listStoredImages, loadImageMetadata, saveImageMetadata } from '../../../src/store/images.js';
import { objectPath, storeLayout } from '../../../src/store/layout.js';
import { listObjects } from '../../../src/store/store-contents.js';
import type { TreeIndex } from '../../../src/store/index-format.js';
import { explainSkip, needsCommands, needsRoot } from '../../support/tier.js';
import { aclUser1000, buildLayerTar, CAP_NET_RAW, tarStream, type TarItem } from './layer-tar-builder.js';
import { testDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('setfattr', 'getfattr'));

const diffId = (name: string): string => 'sha256:' + createHash('sha256').update(name).digest('hex');
const digest = diffId;

function xattrsOf(path: string): Record<string, string> {
  const out = execFileSync('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'base64', path], { encoding: 'utf8' });
  const r: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([^#=][^=]*)=0s(.*)$/.exec(line);
    if (m) r[m[1] as string] = m[2] as string;
  }
  return r;
}

async function rootCause(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return unwrapContext(err).root;
  }
  throw new Error('expected a failure');
}

describe.skipIf(skip)('layer import into the object store', () => {
  let root: string;
  beforeEach(async () => {
    root = testDir('store', { under: DISK_TMP });
  });

  async function imp(name: string, items: TarItem[]) {
    return importLayer(root, diffId(name), tarStream(await buildLayerTar(items)));
  }

  async function image(name: string, layers: Array<[string, TarItem[]]>): Promise<TreeIndex> {
    for (const [n, items] of layers) await imp(n, items);
    return writeImageTree(root, digest(name), layers.map(([n]) => diffId(n)));
  }

  it('stores files as objects with their metadata, a fixed mtime, and records the rest in the index', async () => {
    const r = await imp('basic', [
      { name: './', type: 'directory', mode: 0o755 },
      { name: './usr/', type: 'directory' },
      { name: './usr/bin/', type: 'directory' },
      { name: './usr/bin/su', content: 'su binary', mode: 0o4755, uid: 0, gid: 0 },
      { name: './usr/bin/tool', content: 'tool', mode: 0o750, uid: 1000, gid: 1001 },
      { name: './usr/bin/tool2', type: 'link', linkname: './usr/bin/tool' },
      { name: './bin', type: 'symlink', linkname: 'usr/bin', uid: 5, gid: 6 },
      { name: '/etc/abs', content: 'absolute names land inside the image' },
    ]);
    expect(r.cached).toBe(false);
    expect(r.stats).toMatchObject({ files: 4, objectsWritten: 3, skipped: 0 });
    const index = await loadLayerIndex(root, diffId('basic'));
    const byPath = new Map(index.entries.map((e) => [e.path, e]));
    const su = byPath.get('usr/bin/su');
    const tool = byPath.get('usr/bin/tool');
    const tool2 = byPath.get('usr/bin/tool2');
    expect(su?.kind).toBe('file');
    expect(tool2).toMatchObject({ kind: 'file', object: tool?.kind === 'file' ? tool.object : 'x', uid: 1000 });
    expect(byPath.get('bin')).toMatchObject({ kind: 'symlink', target: 'usr/bin', uid: 5, gid: 6 });
    expect(byPath.get('etc/abs')).toMatchObject({ kind: 'file' });
    const layout = storeLayout(root);
    const suStat = await stat(objectPath(layout, su?.kind === 'file' ? su.object : ''));
    expect(suStat.mode & 0o7777).toBe(0o4755);
    expect(suStat.mtimeMs).toBe(0);
    const toolStat = await stat(objectPath(layout, tool?.kind === 'file' ? tool.object : ''));
    expect([toolStat.uid, toolStat.gid, toolStat.mode & 0o7777]).toEqual([1000, 1001, 0o750]);
    expect(await readdir(layout.tmpDir)).toEqual([]);
    expect((await listObjects(layout)).temps).toEqual([]);
    // Deployments live below <root>/bootc: it must stay traversable.
    expect((await stat(layout.bootcDir)).mode & 0o777).toBe(0o755);
    expect((await stat(layout.objectsDir)).mode & 0o777).toBe(0o755);

    const again = await importLayer(root, diffId('basic'), tarStream(Buffer.alloc(0)));
    expect(again).toMatchObject({ cached: true, stats: r.stats });
  });

  it('dedups identical files, but not files that differ only in xattrs', async () => {
    const r = await imp('xattrs', [
      { name: 'a', content: 'same' },
      { name: 'b', content: 'same' },
      { name: 'ping', content: 'same', xattrs: { 'security.capability': CAP_NET_RAW } },
      { name: 'shared', content: 'acl', mode: 0o664, xattrs: { 'system.posix_acl_access': aclUser1000() } },
      { name: 'note', content: 'same', xattrs: { 'user.comment': Buffer.from('hello') } },
      { name: 'dir/', type: 'directory', mode: 0o775, xattrs: { 'user.dir': Buffer.from('d') } },
    ]);
    expect(r.stats.objectsWritten).toBe(4);
    const index = await loadLayerIndex(root, diffId('xattrs'));
    const obj = (p: string): string => {
      const e = index.entries.find((x) => x.path === p);
      return e?.kind === 'file' ? e.object : '';
    };
    expect(obj('a')).toBe(obj('b'));
    expect(obj('ping')).not.toBe(obj('a'));
    const layout = storeLayout(root);
    expect(xattrsOf(objectPath(layout, obj('ping')))['security.capability']).toBe(CAP_NET_RAW.toString('base64'));
    expect(xattrsOf(objectPath(layout, obj('shared')))['system.posix_acl_access']).toBe(aclUser1000().toString('base64'));
    expect(xattrsOf(objectPath(layout, obj('note')))['user.comment']).toBe(Buffer.from('hello').toString('base64'));
    expect((await stat(objectPath(layout, obj('shared')))).mode & 0o777).toBe(0o674);
    expect(index.entries.find((e) => e.path === 'dir')).toMatchObject({ kind: 'dir', xattrs: [{ name: 'user.dir' }] });

    const f = await fsckStore(root);
    expect(f).toMatchObject({ ok: true, objectsChecked: 4, corrupt: [], missing: [] });
  });

  it.each([
    ['a .. component', [{ name: 'usr/../../etc/passwd', content: 'x' }], /escapes the image root/],
    ['a hardlink out of the image', [{ name: 'x', type: 'link', linkname: '../../etc/shadow' }], /hardlink target .* escapes/],
    ['a hardlink to a missing target', [{ name: 'x', type: 'link', linkname: 'nowhere' }], /not earlier in the same layer/],
    [
      'a symlinked parent',
      [
        { name: 'a', type: 'symlink', linkname: '/etc' },
        { name: 'a/b', content: 'would land in /etc/b' },
      ],
      /"a\/b" has a symlinked parent/,
    ],
  ] as Array<[string, TarItem[], RegExp]>)('refuses %s, leaving no index and no temp files', async (_what, items, message) => {
    const before = [{ name: 'ok', content: 'written before the bad entry' }];
    const err = await rootCause(imp('bad', [...before, ...items]));
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(message);
    expect(await isLayerImported(root, diffId('bad'))).toBe(false);
    const layout = storeLayout(root);
    expect(await readdir(layout.tmpDir)).toEqual([]);
    expect((await listObjects(layout)).temps).toEqual([]);
    expect((await readdir(layout.layersDir)).filter((n) => n.includes('.importing'))).toEqual([]);
    await expect(lstat('/etc/b')).rejects.toThrow();
  });

  it('refuses a file below a symlink from a lower layer when merging', async () => {
    await imp('low', [{ name: 'a', type: 'symlink', linkname: '/etc' }]);
    await imp('up', [{ name: 'a/b', content: 'x' }]);
    const err = await rootCause(writeImageTree(root, digest('img'), [diffId('low'), diffId('up')]));
    expect((err as Error).message).toMatch(/entry \/a\/b has a symlinked parent: \/a is a symlink to "\/etc"/);
  });

  it('skips device nodes and fifos', async () => {
    const r = await imp('dev', [
      { name: 'dev/', type: 'directory' },
      { name: 'dev/null', type: 'character-device' },
      { name: 'dev/sda', type: 'block-device' },
      { name: 'run/fifo', type: 'fifo' },
    ]);
    expect(r.stats.skipped).toBe(3);
    expect((await loadLayerIndex(root, diffId('dev'))).entries.map((e) => e.path)).toEqual(['dev']);
  });

  it('whiteouts, opaque dirs and replacements across layers show in the checkout', async () => {
    const tree = await image('layers', [
      [
        'l1',
        [
          { name: 'etc/', type: 'directory' },
          { name: 'etc/motd', content: 'hi' },
          { name: 'etc/keep', content: 'keep' },
          { name: 'opt/', type: 'directory' },
          { name: 'opt/old/', type: 'directory' },
          { name: 'opt/old/file', content: 'old' },
          { name: 'thing', content: 'a file first' },
          { name: 'home/', type: 'directory' },
          { name: 'home/u/', type: 'directory' },
          { name: 'home/u/.profile', content: 'p' },
        ],
      ],
      [
        'l2',
        [
          { name: 'etc/.wh.motd' },
          { name: 'opt/', type: 'directory', mode: 0o700 },
          { name: 'opt/.wh..wh..opq' },
          { name: 'opt/new', content: 'new' },
          { name: 'thing/', type: 'directory' },
          { name: 'thing/inside', content: 'now a dir' },
          { name: 'home', type: 'symlink', linkname: 'var/home' },
        ],
      ],
    ]);
    const dest = join(root, 'deploy');
    const r = await checkoutTree(root, tree, dest);
    expect(r).toMatchObject({ crossDevice: false, copied: 0 });
    await expect(lstat(join(dest, 'etc/motd'))).rejects.toThrow();
    expect(await readFile(join(dest, 'etc/keep'), 'utf8')).toBe('keep');
    expect(await readdir(join(dest, 'opt'))).toEqual(['new']);
    expect((await stat(join(dest, 'opt'))).mode & 0o7777).toBe(0o700);
    expect(await readFile(join(dest, 'thing/inside'), 'utf8')).toBe('now a dir');
    expect(await readlink(join(dest, 'home'))).toBe('var/home');
    expect((await stat(join(dest, 'etc'))).mtimeMs).toBe(0);
  });

  it('checks out with hardlinks, copies and redirects, keeping owners, modes and xattrs', async () => {
    const tree = await image('deploy', [
      [
        'd1',
        [
          { name: './', type: 'directory' },
          { name: 'etc/', type: 'directory' },
          { name: 'etc/shadow', content: 'secret', mode: 0o640, uid: 0, gid: 42 },
          { name: 'etc/acl', content: 'acl', mode: 0o664, xattrs: { 'system.posix_acl_access': aclUser1000() } },
          { name: 'usr/', type: 'directory' },
          { name: 'usr/bin/', type: 'directory' },
          { name: 'usr/bin/ping', content: 'ping', mode: 0o755, xattrs: { 'security.capability': CAP_NET_RAW } },
          { name: 'usr/share/', type: 'directory', mode: 0o755, xattrs: { 'user.dir': Buffer.from('x') } },
          { name: 'var/', type: 'directory' },
          { name: 'var/lib/', type: 'directory', uid: 7 },
          { name: 'var/lib/seed', content: 'seed' },
          { name: 'sbin', type: 'symlink', linkname: 'usr/bin', uid: 3, gid: 4 },
        ],
      ],
    ]);
    const dest = join(root, 'deploy', 'd1');
    await mkdir(join(root, 'deploy'));
    await checkoutTree(root, tree, dest, {
      rules: [
        { path: '/etc', destination: join(dest, 'usr/etc') },
        { path: '/var', method: 'mountpoint' },
      ],
    });
    await checkoutTree(root, tree, join(dest, 'etc'), { subtree: '/etc', method: 'copy' });
    const state = join(root, 'state-var');
    await checkoutTree(root, tree, state, { subtree: 'var', method: 'copy' });

    const layout = storeLayout(root);
    const idx = await loadImageTree(root, digest('deploy'));
    const objOf = (p: string): string => {
      const e = idx.entries.find((x) => x.path === p);
      return e?.kind === 'file' ? objectPath(layout, e.object) : '';
    };
    // hardlinked: same inode as the object
    expect((await stat(join(dest, 'usr/bin/ping'))).ino).toBe((await stat(objOf('usr/bin/ping'))).ino);
    expect((await stat(join(dest, 'usr/etc/shadow'))).ino).toBe((await stat(objOf('etc/shadow'))).ino);
    // copied: own inode, same metadata and xattrs
    const shadow = await stat(join(dest, 'etc/shadow'));
    expect(shadow.ino).not.toBe((await stat(objOf('etc/shadow'))).ino);
    expect([shadow.uid, shadow.gid, shadow.mode & 0o7777, shadow.mtimeMs]).toEqual([0, 42, 0o640, 0]);
    expect(xattrsOf(join(dest, 'etc/acl'))['system.posix_acl_access']).toBe(aclUser1000().toString('base64'));
    expect(xattrsOf(join(dest, 'usr/share'))['user.dir']).toBe(Buffer.from('x').toString('base64'));
    // symlink with its owner
    const sbin = await lstat(join(dest, 'sbin'));
    expect([sbin.isSymbolicLink(), sbin.uid, sbin.gid]).toEqual([true, 3, 4]);
    // /var: only the mount point in the deployment, content seeded into the state dir
    expect(await readdir(join(dest, 'var'))).toEqual([]);
    expect(await readFile(join(state, 'lib/seed'), 'utf8')).toBe('seed');
    expect((await stat(join(state, 'lib'))).uid).toBe(7);
    expect((await stat(join(state, 'lib/seed'))).nlink).toBe(1);
  });

  it('copies instead of hardlinking when the destination is on another filesystem', async () => {
    const tree = await image('xdev', [
      [
        'x1',
        [
          { name: 'usr/', type: 'directory' },
          { name: 'usr/bin/', type: 'directory' },
          { name: 'usr/bin/ping', content: 'ping', mode: 0o4755, uid: 0, gid: 0, xattrs: { 'security.capability': CAP_NET_RAW } },
          { name: 'usr/bin/mine', content: 'mine', mode: 0o640, uid: 1000, gid: 1000 },
        ],
      ],
    ]);
    const mnt = join(root, 'other-fs');
    await mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
    try {
      const r = await checkoutTree(root, tree, join(mnt, 'd'));
      expect(r).toMatchObject({ crossDevice: true, hardlinked: 0, copied: 2 });
      const ping = await stat(join(mnt, 'd/usr/bin/ping'));
      expect([ping.mode & 0o7777, ping.mtimeMs]).toEqual([0o4755, 0]);
      expect(xattrsOf(join(mnt, 'd/usr/bin/ping'))['security.capability']).toBe(CAP_NET_RAW.toString('base64'));
      const mine = await stat(join(mnt, 'd/usr/bin/mine'));
      expect([mine.uid, mine.gid, mine.mode & 0o7777]).toEqual([1000, 1000, 0o640]);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('refuses a destination that is not empty and a tree that puts an entry below a symlink', async () => {
    const tree = await image('t', [['t1', [{ name: 'a', type: 'symlink', linkname: '/tmp' }, { name: 'f', content: 'x' }]]]);
    const dest = join(root, 'nonempty');
    await mkdir(dest);
    await writeFile(join(dest, 'junk'), '');
    expect(((await rootCause(checkoutTree(root, tree, dest))) as Error).message).toMatch(/exists and is not an empty directory/);

    const forged: TreeIndex = {
      header: tree.header,
      entries: [...tree.entries, { kind: 'file', path: 'a/evil', object: (tree.entries.find((e) => e.kind === 'file') as { object: string }).object, mode: 0o644, uid: 0, gid: 0, size: 1, xattrs: [] }],
    };
    const dest2 = join(root, 'forged');
    const err = await rootCause(checkoutTree(root, forged, dest2));
    expect((err as Error).message).toMatch(/Refusing to check out \/a\/evil: its parent \/a is not a directory of the image/);
    await expect(lstat('/tmp/evil')).rejects.toThrow();

    const viaLink = join(root, 'link-to-tmp');
    await symlink('/tmp', viaLink);
    const err3 = await rootCause(checkoutTree(root, tree, join(viaLink, 'x')));
    expect((err3 as Error).message).toMatch(/reached without symlinks/);
  });

  it('after a crash cut an import short, existing objects are rewritten, not trusted', async () => {
    await imp('first', [{ name: 'f', content: 'content shared by both layers' }]);
    const layout = storeLayout(root);
    const idx = await loadLayerIndex(root, diffId('first'));
    const f = idx.entries[0];
    const path = objectPath(layout, f?.kind === 'file' ? f.object : '');
    // What power loss leaves of an object written without fsync: an empty file.
    await writeFile(path, '');
    await writeFile(join(layout.layersDir, `${diffId('crashed')}.importing`), JSON.stringify({ pid: 1, bootId: 'a-previous-boot' }));
    await imp('second', [{ name: 'g', content: 'content shared by both layers' }]);
    expect(await readFile(path, 'utf8')).toBe('content shared by both layers');
    expect((await fsckStore(root)).ok).toBe(true);
    await gcStore(root, []);
    expect((await readdir(layout.layersDir)).filter((n) => n.endsWith('.importing'))).toEqual([]);
  });

  it('an interrupted import leaves no index and no temp files', async () => {
    const big = Buffer.alloc(6 * 1024 * 1024, 7);
    const tarBuf = await buildLayerTar([
      { name: 'small', content: 'x' },
      { name: 'big', content: big },
      { name: 'later', content: 'y' },
    ]);
    const controller = new AbortController();
    const stream = tarStream(tarBuf);
    let seen = 0;
    stream.on('data', (c: Buffer) => {
      seen += c.length;
      if (seen > 3 * 1024 * 1024) controller.abort();
    });
    expect(await rootCause(importLayer(root, diffId('cut'), stream, { signal: controller.signal }))).toBeInstanceOf(
      InterruptedError,
    );
    const layout = storeLayout(root);
    expect(await isLayerImported(root, diffId('cut'))).toBe(false);
    expect(await readdir(layout.tmpDir)).toEqual([]);
    expect((await listObjects(layout)).temps).toEqual([]);
    expect((await readdir(layout.layersDir)).filter((n) => n.endsWith('.importing'))).toEqual([]);
  });

  it('importLayers: layers streamed together share objects; one that fails leaves the others indexed and no marker', async () => {
    const shared = Buffer.alloc(2 * 1024 * 1024, 3);
    const good1 = await buildLayerTar([{ name: 'usr/shared', content: shared }, { name: 'usr/one', content: '1' }]);
    const good2 = await buildLayerTar([{ name: 'usr/shared', content: shared }, { name: 'usr/two', content: '2' }]);
    const truncated = (await buildLayerTar([{ name: 'usr/cut', content: Buffer.alloc(100_000, 9) }])).subarray(0, 50_000);
    const started: number[] = [];
    const attempt = importLayers(
      root,
      [
        { diffId: diffId('l1'), open: () => tarStream(good1) },
        { diffId: diffId('l2'), open: () => tarStream(good2) },
        { diffId: diffId('l3'), open: () => tarStream(truncated) },
      ],
      { onLayer: (i) => started.push(i) },
    );
    await expect(attempt).rejects.toThrow(/Importing layer/);
    expect(started).toEqual([0, 1, 2]);
    expect(await isLayerImported(root, diffId('l1'))).toBe(true);
    expect(await isLayerImported(root, diffId('l2'))).toBe(true);
    expect(await isLayerImported(root, diffId('l3'))).toBe(false);
    const layout = storeLayout(root);
    expect((await readdir(layout.layersDir)).filter((n) => n.endsWith('.importing'))).toEqual([]);
    expect((await listObjects(layout)).temps).toEqual([]);
    const one = await loadLayerIndex(root, diffId('l1'));
    const two = await loadLayerIndex(root, diffId('l2'));
    const objectOf = (index: typeof one, path: string) => index.entries.find((e) => e.path === path && e.kind === 'file') as { object: string } | undefined;
    expect(objectOf(one, 'usr/shared')?.object).toBe(objectOf(two, 'usr/shared')?.object);
    expect((await stat(objectPath(layout, objectOf(one, 'usr/shared')!.object))).size).toBe(shared.length);
  });

  it('fsck finds a damaged object; gc removes only what no kept image uses', async () => {
    await image('one', [['base', [{ name: 'shared', content: 'both' }, { name: 'only1', content: 'one' }]]]);
    await image('two', [
      ['base', [{ name: 'shared', content: 'both' }, { name: 'only1', content: 'one' }]],
      ['top', [{ name: 'only2', content: 'two' }, { name: '.wh.only1' }]],
    ]);
    const layout = storeLayout(root);
    const tree1 = await loadImageTree(root, digest('one'));
    const only1 = tree1.entries.find((e) => e.path === 'only1');
    const only1Path = objectPath(layout, only1?.kind === 'file' ? only1.object : '');
    await writeFile(only1Path, 'tampered');
    const f = await fsckStore(root);
    expect(f.ok).toBe(false);
    expect(f.corrupt.map((c) => c.path)).toEqual([only1Path]);

    // Keeping only image two: its base layer index still references only1's object (the
    // whiteout hides it in the image, not in the layer), so it stays.
    await saveImageMetadata(root, digest('two'), { manifest: '{"m":2}', config: '{"c":2}' });
    await mkdir(join(layout.imagesDir, digest('unfinished')));
    expect(await listStoredImages(root)).toEqual([digest('one'), digest('two')].sort());
    await expect(gcStore(root, [digest('unfinished')])).rejects.toThrow(/store has no tree for it/);

    const dry = await gcStore(root, [digest('two')], { dryRun: true });
    expect(dry).toMatchObject({ layersRemoved: [], objectsRemoved: 0 });
    expect(dry.imagesRemoved.sort()).toEqual([digest('one'), digest('unfinished')].sort());
    await gcStore(root, [digest('two')]);
    expect(await readdir(layout.imagesDir)).toEqual([digest('two')]);
    expect((await loadImageMetadata(root, digest('two'))).config.toString()).toBe('{"c":2}');

    const g = await gcStore(root, []);
    expect(g).toMatchObject({ imagesRemoved: [digest('two')], objectsRemoved: 3, objectsKept: 0 });
    expect(g.layersRemoved.sort()).toEqual([diffId('base'), diffId('top')].sort());
    expect((await fsckStore(root)).objectsChecked).toBe(0);
    await expect(gcStore(root, [digest('gone')])).rejects.toThrow();
  });
});
