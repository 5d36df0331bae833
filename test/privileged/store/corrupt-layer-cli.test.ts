/**
 * Privileged tier: an image whose layer digests are right but whose layer content is not a
 * usable tar, through the real CLI (`image build-disk`, `install to-disk --via-loopback`).
 * Each ends with exit code 1, an error naming the layer's digest and a hint, no stack, and
 * nothing left: no partial blob in the blob store, no staged root, no output, nothing
 * mounted, no loop device, the disk file untouched. The layouts are built here, so no
 * fixture is needed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { filesUnder } from '../../support/files.js';
import { fixturesHint, fixturesIndexPath } from '../../../fixtures/paths.js';
import { explainSkip, needsFile, needsLoopDevices } from '../../support/tier.js';
import { writeFixtureWithLayer } from '../oci/fixture-layout.js';
import { tarOf, writeBlob, writeIndex } from '../oci/layout-builder.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsLoopDevices());

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The three kinds of damage, as uncompressed layer bytes (the diff-id is computed over them). */
async function damagedTars(): Promise<Record<string, Buffer>> {
  const tar = await tarOf({ 'usr/lib/os-release': 'ID=test\n', 'usr/bin/tool': Buffer.alloc(4096, 7) });
  const badChecksum = Buffer.from(tar);
  badChecksum[0] = badChecksum[0]! ^ 0x20; // the first header's name changes, its checksum does not
  return {
    'not a tar (a gzip of plain text)': Buffer.from('this is plain text, not a tar archive\n'.repeat(64)),
    'a tar cut short inside a file': tar.subarray(0, 512 * 3 + 100),
    'a tar with a bad header checksum': badChecksum,
  };
}

/** A one-layer OCI layout at `dir` tagged `damaged`, every digest right; the layer's blob digest. */
function writeDamagedLayout(dir: string, tar: Buffer): string {
  const blob = gzipSync(tar);
  const layerDigest = writeBlob(dir, blob);
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(tar)] } });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: writeBlob(dir, config), size: Buffer.byteLength(config) },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: blob.length }],
  });
  writeIndex(dir, [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: writeBlob(dir, manifest),
      size: Buffer.byteLength(manifest),
      annotations: { 'org.opencontainers.image.ref.name': 'damaged' },
    },
  ]);
  return layerDigest;
}

/** The MiB of `file` at `offset` is all zeroes. */
function zeroAt(file: string, offset: number): boolean {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    readSync(fd, buf, 0, buf.length, offset);
    return buf.every((b) => b === 0);
  } finally {
    closeSync(fd);
  }
}

/** Blob store files that are neither a complete blob nor the layout's own files. */
const leftoversInStore = (store: string): string[] =>
  filesUnder(store).filter((f) => f !== 'oci-layout' && f !== 'index.json' && !/^blobs\/sha256\/[0-9a-f]{64}$/.test(f));

const cli = (...args: string[]) => execa(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, env: { NO_COLOR: '1' } });

/** Exit code 1, one error line naming the layer, a hint, no stack trace. */
function expectRefusal(r: { exitCode?: number; stderr: string }, layerDigest: string): void {
  expect(r.exitCode, r.stderr).toBe(1);
  const lines = r.stderr.trimEnd().split('\n');
  const errors = lines.filter((l) => l.startsWith('error: '));
  expect(errors, r.stderr).toHaveLength(1);
  expect(errors[0]).toContain(`layer ${layerDigest}`);
  expect(errors[0]).toMatch(/is not a valid tar archive/);
  expect(lines.find((l) => l.startsWith('hint: '))).toMatch(/rebuild or re-push the image/);
  expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
}

describe.skipIf(skip)('a layer that is not a valid tar (right digests)', async () => {
  const cases = Object.entries(await damagedTars());
  let tmp: string;
  let caseNo = 0;

  const scratch = suiteDir('corrupt-layer', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
  });

  const newCase = (tar: Buffer): { dir: string; layerDigest: string } => {
    const dir = join(tmp, `case-${++caseNo}`);
    return { dir, layerDigest: writeDamagedLayout(join(dir, 'layout'), tar) };
  };

  it.each(cases)('image build-disk refuses %s, naming the layer, leaving nothing', async (_name, tar) => {
    const { dir, layerDigest } = newCase(tar);
    const [output, store, work] = ['output', 'store', 'work'].map((d) => join(dir, d)) as [string, string, string];
    const r = await cli('image', 'build-disk', `oci:${join(dir, 'layout')}:damaged`, '--output', output, '--store', store, '--work-dir', work, '--quiet');
    expectRefusal(r, layerDigest);
    expect(filesUnder(output)).toEqual([]);
    expect(filesUnder(work)).toEqual([]);
    expect(leftoversInStore(store)).toEqual([]);
  }, 120_000);

  it.each(cases)('install to-disk refuses %s, naming the layer, leaving nothing', async (_name, tar) => {
    const { dir, layerDigest } = newCase(tar);
    const disk = join(dir, 'disk.raw');
    execFileSync('truncate', ['-s', '4G', disk]);
    const store = join(dir, 'store');
    const r = await cli('install', 'to-disk', '--via-loopback', disk, '--source-imgref', `oci:${join(dir, 'layout')}:damaged`, '--store', store);
    expectRefusal(r, layerDigest);
    expect(leftoversInStore(store)).toEqual([]);
    expect(execFileSync('losetup', ['-j', disk], { encoding: 'utf8' })).toBe('');
    expect(execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' })).not.toMatch(/\/run\/bootc\/mounts\//);
    // Refused before anything was written: no partition table at either end of the disk.
    expect(zeroAt(disk, 0) && zeroAt(disk, statSync(disk).size - (1 << 20))).toBe(true);
  }, 120_000);
});

/**
 * A tar header with a right checksum but no ustar magic (an old v7 header): the install's
 * look at the layers before the disk is written passes it, the import refuses it. So this
 * failure comes after partitioning, with the new root mounted.
 */
async function v7HeaderTar(): Promise<Buffer> {
  const tar = Buffer.from(await tarOf({ 'usr/share/doc/old-format.txt': 'v7\n' }));
  tar.fill(0, 257, 265); // magic and version
  tar.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += tar[i]!;
  tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return tar;
}

describe.skipIf(skip || explainSkip('privileged', needsFile(fixturesIndexPath, fixturesHint)))('a layer the import refuses, after the disk is written', () => {
  let tmp: string;
  const scratch = suiteDir('corrupt-layer-late', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
  });

  it('install to-disk refuses it naming the layer, and leaves nothing mounted or attached', async () => {
    const layout = join(tmp, 'layout');
    const layerDigest = writeFixtureWithLayer(layout, 'v7', await v7HeaderTar(), 'test: a v7 tar header');
    const disk = join(tmp, 'disk.raw');
    execFileSync('truncate', ['-s', '4G', disk]);
    const store = join(tmp, 'store');
    const r = await cli('install', 'to-disk', '--via-loopback', disk, '--source-imgref', `oci:${layout}:v7`, '--store', store);
    expectRefusal(r, layerDigest);
    expect(r.stderr).toContain(`Importing layer ${layerDigest}: the layer is not a valid tar archive`);
    expect(leftoversInStore(store)).toEqual([]);
    expect(execFileSync('losetup', ['-j', disk], { encoding: 'utf8' })).toBe('');
    expect(execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' })).not.toMatch(/\/run\/bootc\/mounts\//);
  }, 300_000);
});
