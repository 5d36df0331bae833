/**
 * Privileged tier: `bootc image build-disk --store DIR` keeps the imported object store, so
 * a rebuild after a one-layer change imports that layer only, and its disk has the content
 * a cold build of the same image has.
 *
 * The image is the generated many-layer image (fixtures/large-image.ts), small: fixture:v1
 * plus three generated layers; the change is its last layer reseeded (`variant`). Three
 * builds with the real CLI: the image into a fresh store, the changed image into that store
 * (the rebuild), and the changed image into another fresh store (cold). The two disks of the
 * changed image are then mounted read-only and compared file by file: they differ in
 * timestamps (the origin's `createdAt`, files' times), inode numbers and UUIDs only, and
 * in two figures of the layer indexes (objects and bytes each import wrote, which depend
 * on which of two layers imported at once wrote a shared file first; a cold build's vary
 * the same way).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { diskImageOutputPath } from '../../../src/build-disk/disk-image.js';
import { decodeLayerIndex } from '../../../src/store/index-format.js';
import { layerIndexPath, storeLayout } from '../../../src/store/layout.js';
import { fixturesHint, fixturesIndexPath, ociLayoutDir } from '../../../fixtures/paths.js';
import { largeImage, type LargeImage } from '../../../fixtures/large-image.js';
import { explainSkip, needsCommands, needsFile, needsLoopDevices, needsRoot } from '../../support/tier.js';
import { DISK_TMP, suiteDir } from '../../support/temp-tree.js';

const skip = explainSkip(
  'privileged',
  needsRoot() ??
    needsLoopDevices() ??
    needsCommands('sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'mdir', 'qemu-img', 'mount') ??
    needsFile(join(ociLayoutDir, 'index.json'), fixturesHint) ??
    needsFile(fixturesIndexPath, fixturesHint),
);

/** Names of the objects in a store (`<store>/bootc/objects/xx/…`). */
function objectNames(store: string): Set<string> {
  const objectsDir = storeLayout(store).objectsDir;
  const names = new Set<string>();
  for (const fanout of readdirSync(objectsDir)) {
    if (!/^[0-9a-f]{2}$/.test(fanout)) continue;
    for (const name of readdirSync(join(objectsDir, fanout))) names.add(fanout + name);
  }
  return names;
}

async function buildDisk(image: string, store: string, output: string, work: string): Promise<string> {
  const r = await execa(
    'node',
    ['--import', 'tsx', 'src/cli.ts', 'image', 'build-disk', image, '--type', 'raw', '--output', output, '--store', store, '--work-dir', work, '--quiet'],
    { reject: false, all: true },
  );
  if (r.exitCode !== 0) throw new Error(`bootc image build-disk ${image} failed:\n${r.all}`);
  // With stderr: a warning (a kept disk that could not be updated) shows in the test's output.
  return r.all!;
}

interface Partition {
  start: number;
  size: number;
  type: string;
}

async function partitions(raw: string): Promise<Partition[]> {
  const { stdout } = await run({ description: 'Reading the partition table', argv: ['sfdisk', '--json', raw] });
  return (JSON.parse(stdout) as { partitiontable: { partitions: Partition[] } }).partitiontable.partitions;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

const ROOT_X86_64 = '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709';
const ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';

/**
 * The root filesystem's content, one line per path: type, mode, owner, size, link count,
 * symlink target, content hash and xattrs. Timestamps and inode numbers are left out.
 */
async function rootContent(raw: string, mountpoint: string): Promise<string[]> {
  const root = (await partitions(raw)).find((p) => p.type === ROOT_X86_64)!;
  await run({ description: 'Mounting the root filesystem', argv: ['mount', '-o', `ro,loop,offset=${root.start * 512},sizelimit=${root.size * 512}`, raw, mountpoint] });
  try {
    const { stdout: listing } = await run({
      description: 'Listing the root filesystem',
      argv: ['find', '.', '-printf', '%P\t%y\t%m\t%U\t%G\t%s\t%n\t%l\n'],
      cwd: mountpoint,
    });
    const { stdout: hashes } = await run({
      description: 'Hashing the root filesystem',
      argv: ['sh', '-c', 'find . -type f -print0 | sort -z | xargs -0 -r sha256sum'],
      cwd: mountpoint,
    });
    const { stdout: xattrs } = await run({
      description: 'Reading xattrs',
      argv: ['sh', '-c', 'getfattr -R -P -d -m - --absolute-names . 2>/dev/null || true'],
      cwd: mountpoint,
    });
    // The origin records when the deployment was made: compared without that time.
    const origins = listing
      .split('\n')
      .filter((l) => /^bootc\/deploy\/[^/]+\/[^/]+\.origin\t/.test(l))
      .map((l) => {
        const path = l.split('\t')[0]!;
        const { createdAt, ...rest } = JSON.parse(readFileSync(join(mountpoint, path), 'utf8')) as Record<string, unknown>;
        expect(createdAt).toMatch(/^\d{4}-/);
        return `${path} ${JSON.stringify(rest)}`;
      });
    // A layer index records what its import wrote: objects another layer, imported at the
    // same time, had written already are not counted, so those two figures vary.
    const layerIndexes = listing
      .split('\n')
      .filter((l) => /^bootc\/layers\/[^/]+\.index\t/.test(l))
      .map((l) => {
        const path = l.split('\t')[0]!;
        const [header, ...entries] = readFileSync(join(mountpoint, path), 'utf8').split('\n');
        const { stats, ...rest } = JSON.parse(header!) as { stats: Record<string, unknown> };
        const { objectsWritten, bytesWritten, ...kept } = stats;
        expect([objectsWritten, bytesWritten].every((n) => typeof n === 'number')).toBe(true);
        return `${path} ${JSON.stringify({ ...rest, stats: kept })} ${sha256(entries.join('\n'))}`;
      });
    const varying = (path: string): boolean => path.endsWith('.origin') || /^(\.\/)?bootc\/layers\/[^/]+\.index$/.test(path);
    // Their sizes vary with those figures too (a digit more or less).
    const entries = listing.split('\n').map((l) => {
      const fields = l.split('\t');
      if (varying(fields[0]!)) fields[5] = 'size compared below';
      return fields.join('\t');
    });
    return [...entries, ...hashes.split('\n').filter((l) => !varying(l.split('  ')[1] ?? '')), ...origins, ...layerIndexes, ...xattrs.split('\n')].filter((l) => l !== '').sort();
  } finally {
    await run({ description: 'Unmounting the root filesystem', argv: ['umount', mountpoint] });
  }
}

/** The ESP's files (names, sizes) and the boot entries' text, the root filesystem's UUID replaced; not the FAT's serial number. */
async function espContent(raw: string, rootUuid: string): Promise<string[]> {
  const esp = (await partitions(raw)).find((p) => p.type === ESP)!;
  const image = `${raw}@@${esp.start * 512}`;
  const { stdout } = await run({ description: 'Listing the ESP', argv: ['mdir', '-/', '-i', image, '::/'], env: { MTOOLS_SKIP_CHECK: '1' } });
  const lines = stdout.split('\n').filter((l) => /\S/.test(l) && !/^(Directory for| +\d+ files?|\s*Total files|.*bytes free| Volume Serial Number)/.test(l));
  const { stdout: entryNames } = await run({ description: 'Listing the boot entries', argv: ['mdir', '-b', '-i', image, '::/loader/entries'], env: { MTOOLS_SKIP_CHECK: '1' } });
  const texts: string[] = [];
  for (const name of entryNames.split('\n').filter((l) => l.trim() !== '')) {
    const { stdout: text } = await run({ description: 'Reading a boot entry', argv: ['mtype', '-i', image, name.trim()], env: { MTOOLS_SKIP_CHECK: '1' } });
    texts.push(text.replaceAll(rootUuid, 'ROOT-UUID'));
  }
  // mdir's lines carry dates and times: keep names and sizes only.
  return [...lines.map((l) => l.replace(/\s+\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2}.*$/, '')), ...texts];
}

const rootUuidOf = (stdout: string): string => /Root filesystem: \w+ UUID=([0-9a-f-]+)/.exec(stdout)![1]!;

describe.skipIf(skip)('bootc image build-disk --store: a rebuild after a one-layer change', () => {
  const scratch = suiteDir('build-disk-incremental', { under: DISK_TMP });
  let image: LargeImage;
  let changed: LargeImage;
  let store: string;
  let objectsBefore: Set<string>;
  let objectsAfter: Set<string>;
  let rebuildOut: string;
  let coldOut: string;

  beforeAll(async () => {
    const tmp = scratch.path;
    const generate = (variant: number) => largeImage({ layers: 3, bytes: 24 * 1024 ** 2, base: 'v1', variant, cacheDir: join(tmp, 'images') });
    image = await generate(0);
    changed = await generate(1);
    store = join(tmp, 'store');
    // As CI would: each build writes its image to the same archive, then builds from it.
    const archive = join(tmp, 'os.tar');
    const ref = `oci-archive:${archive}:large`;
    copyFileSync(image.archivePath, archive);
    await buildDisk(ref, store, join(tmp, 'first'), tmp);
    objectsBefore = objectNames(store);
    copyFileSync(changed.archivePath, archive);
    rebuildOut = await buildDisk(ref, store, join(tmp, 'rebuild'), tmp);
    objectsAfter = objectNames(store);
    coldOut = await buildDisk(ref, join(tmp, 'cold-store'), join(tmp, 'cold'), tmp);
  }, 600_000);

  it('imports only the changed layer: the objects it wrote are that layer\'s files', () => {
    const index = decodeLayerIndex(readFileSync(layerIndexPath(storeLayout(store), lastLayerDiffId(changed)), 'utf8'), 'index');
    const layerFiles = index.entries.filter((e) => e.kind === 'file').length;
    const written = [...objectsAfter].filter((o) => !objectsBefore.has(o)).length;
    expect(layerFiles).toBeGreaterThan(50);
    expect(written).toBeLessThanOrEqual(layerFiles);
    expect(written).toBeGreaterThanOrEqual(layerFiles - 2);
    // What the first image's last layer alone had is gone: the store holds one image per name.
    const removed = [...objectsBefore].filter((o) => !objectsAfter.has(o)).length;
    expect(removed).toBeGreaterThan(50);
    expect(objectsAfter.size).toBe(objectNames(join(scratch.path, 'cold-store')).size);
  });

  it('updates the kept disk\'s root filesystem in place rather than writing it whole', () => {
    const note = /Root filesystem: ext4 UUID=\S+ \(updated from the previous build: (\d+) entries added, (\d+) removed, (\d+) directories changed\)/.exec(rebuildOut);
    expect(note, rebuildOut).not.toBeNull();
    // The changed layer's files, each under the deployment and in the object store; the first image's removed the same way.
    expect(Number(note![1])).toBeGreaterThan(100);
    expect(Number(note![2])).toBeGreaterThan(100);
    // Builds into a fresh store write the disk whole.
    expect(coldOut).not.toMatch(/updated from the previous build/);
    expect(rebuildOut).not.toMatch(/warning/i);
  });

  it('gives a disk with the same files as a cold build; only timestamps, inode numbers and UUIDs differ', async () => {
    const rebuilt = diskImageOutputPath(join(scratch.path, 'rebuild'), 'raw');
    const cold = diskImageOutputPath(join(scratch.path, 'cold'), 'raw');
    const mountpoint = join(scratch.path, 'mnt');
    await run({ description: 'mkdir', argv: ['mkdir', '-p', mountpoint] });
    const [a, b] = [await rootContent(rebuilt, mountpoint), await rootContent(cold, mountpoint)];
    expect(a.length).toBeGreaterThan(1000);
    expect(a.filter((l) => !b.includes(l))).toEqual([]);
    expect(b.filter((l) => !a.includes(l))).toEqual([]);
    expect(a.some((l) => l.includes('usr/share/bench/last-layer'))).toBe(true);
    expect(await espContent(rebuilt, rootUuidOf(rebuildOut))).toEqual(await espContent(cold, rootUuidOf(coldOut)));
  }, 300_000);

  it('builds the root filesystem whole, with a warning, when the kept disk cannot be updated, and keeps the new disk', async () => {
    const kept = join(store, 'build-disk');
    // A manifest cut in the middle of a line: as if the store had been damaged.
    const manifest = readFileSync(join(kept, 'manifest'), 'utf8');
    writeFileSync(join(kept, 'manifest'), manifest.slice(0, manifest.length / 2));
    const out = await buildDisk(`oci-archive:${join(scratch.path, 'os.tar')}:large`, store, join(scratch.path, 'again'), scratch.path);
    expect(out).toMatch(/the previous build's disk could not be updated \(.*ends in the middle of a line\): the root filesystem is built whole/);
    expect(out).not.toMatch(/updated from the previous build/);
    expect(existsSync(join(kept, 'state.json'))).toBe(true);
    const mountpoint = join(scratch.path, 'mnt');
    const again = await rootContent(diskImageOutputPath(join(scratch.path, 'again'), 'raw'), mountpoint);
    expect(again).toEqual(await rootContent(diskImageOutputPath(join(scratch.path, 'cold'), 'raw'), mountpoint));
  }, 300_000);
});

function lastLayerDiffId(image: LargeImage): string {
  const blob = (digest: string): string => join(image.layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const manifest = JSON.parse(readFileSync(blob(image.manifestDigest), 'utf8')) as { config: { digest: string } };
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as { rootfs: { diff_ids: string[] } };
  return config.rootfs.diff_ids.at(-1)!;
}
