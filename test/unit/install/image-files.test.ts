/**
 * The install configuration read straight from an image's layers, with OCI whiteouts
 * applied, on real layouts written by the test (gzip and uncompressed layers).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildLayout } from '../../privileged/oci/layout-builder.js';
import { pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import { readImageInstallConfigFiles, loadInstallConfig } from '../../../src/install/config-files.js';
import { imageFactsScanner, kernelOf, readImageFacts } from '../../../src/install/image-facts.js';
import { suiteDir } from '../../support/temp-tree.js';

const DIR = 'usr/lib/bootc/install';

describe('install configuration from image layers', () => {
  const tmp = suiteDir('image-files');

  const pull = async (name: string, layers: Array<Record<string, string>>) => {
    const layout = join(tmp.path, name);
    await buildLayout(layout, { layers: layers.map((files, i) => ({ files, compression: i % 2 ? 'none' : 'gzip' })) });
    return pullImage(parseReference(`oci:${layout}:latest`), { cacheDir: join(tmp.path, 'cache') });
  };

  it('applies later layers, whiteouts and opaque directories', async () => {
    const pulled = await pull('a', [
      {
        [`${DIR}/00-base.toml`]: '[install]\nroot-fs-type = "xfs"\n',
        [`${DIR}/10-gone.toml`]: '[install]\nstateroot = "gone"\n',
        [`${DIR}/sub/20-deeper.toml`]: '[install]\nstateroot = "deeper"\n',
        'etc/hostname': 'x',
      },
      { [`${DIR}/.wh.10-gone.toml`]: '', [`${DIR}/30-added.toml`]: '[install]\nkargs = ["added"]\n' },
      { [`${DIR}/30-added.toml`]: '[install]\nkargs = ["replaced"]\n' },
    ]);
    const files = await readImageInstallConfigFiles(pulled);
    expect(files).toEqual([
      { path: `/${DIR}/00-base.toml`, text: '[install]\nroot-fs-type = "xfs"\n' },
      { path: `/${DIR}/30-added.toml`, text: '[install]\nkargs = ["replaced"]\n' },
    ]);
    expect(await loadInstallConfig(files, { hostRoot: tmp.path, arch: 'x86_64' })).toEqual({
      'root-fs-type': 'xfs',
      filesystem: { root: { type: 'xfs' } },
      kargs: ['replaced'],
    });
  });

  it('empties the directory under an opaque marker, keeping the same layer\'s files', async () => {
    const pulled = await pull('b', [
      { [`${DIR}/00-base.toml`]: '[install]\n' },
      { [`${DIR}/.wh..wh..opq`]: '', [`${DIR}/50-new.toml`]: '[install]\nstateroot = "new"\n' },
    ]);
    expect((await readImageInstallConfigFiles(pulled)).map((f) => f.path)).toEqual([`/${DIR}/50-new.toml`]);
  });

  it('reads names longer than a tar header holds, past big files whose data it skips', async () => {
    const longDir = `${DIR}/${'d'.repeat(120)}`;
    const pulled = await pull('long', [
      {
        'usr/share/big.bin': Buffer.alloc(3 * 1024 * 1024 + 17, 7) as unknown as string,
        [`${DIR}/${'n'.repeat(110)}.toml`]: '[install]\nstateroot = "long"\n',
        [`${longDir}/ignored.toml`]: 'not read',
        'usr/share/odd.bin': 'x'.repeat(511),
        [`${DIR}/zz.toml`]: '[install]\n',
      },
    ]);
    expect(await readImageInstallConfigFiles(pulled)).toEqual([
      { path: `/${DIR}/${'n'.repeat(110)}.toml`, text: '[install]\nstateroot = "long"\n' },
      { path: `/${DIR}/zz.toml`, text: '[install]\n' },
    ]);
  });

  it('finds nothing in an image without the directory', async () => {
    const pulled = await pull('c', [{ 'usr/bin/true': 'x' }]);
    expect(await readImageInstallConfigFiles(pulled)).toEqual([]);
  });
});

describe('kernelOf', () => {
  const files = (...paths: string[]) => new Map(paths.map((p) => [p, null]));
  it('finds the one kernel with its initramfs', () => {
    expect(kernelOf(files('usr/lib/modules/6.1.0-1-amd64/vmlinuz', 'usr/lib/modules/6.1.0-1-amd64/initramfs.img'), 'img')).toBe('6.1.0-1-amd64');
  });
  it('refuses no kernel, two kernels, or a missing initramfs, naming the image', () => {
    expect(() => kernelOf(files(), 'oci:/x:nokernel')).toThrow('image oci:/x:nokernel has no kernel: /usr/lib/modules/<kver>/vmlinuz is missing');
    expect(() => kernelOf(files('usr/lib/modules/a/vmlinuz', 'usr/lib/modules/b/vmlinuz'), 'img')).toThrow(/more than one kernel: a, b/);
    expect(() => kernelOf(files('usr/lib/modules/a/vmlinuz'), 'img')).toThrow(/no initramfs/);
  });
});

describe('readImageFacts', () => {
  const tmp = suiteDir('image-facts');

  it('gathers the facts while the layers download, and from the cache for layers already there', async () => {
    const layout = join(tmp.path, 'tapped');
    await buildLayout(layout, {
      layers: [
        { files: { 'usr/lib/modules/1/vmlinuz': 'k', 'usr/lib/modules/1/initramfs.img': 'i', 'usr/share/big.bin': Buffer.alloc(3 << 20, 1) }, compression: 'gzip' },
        { files: { 'usr/lib/bootc/install/00.toml': '[install]\nstateroot = "s"\n' }, compression: 'none' },
      ],
    });
    const ref = parseReference(`oci:${layout}:latest`);
    const expected = { installConfigFiles: [{ path: '/usr/lib/bootc/install/00.toml', text: '[install]\nstateroot = "s"\n' }], kernelVersion: '1' };
    const first = imageFactsScanner('tapped');
    const pulled = await pullImage(ref, { cacheDir: join(tmp.path, 'tapped-cache'), layerTap: first.tap });
    expect([first.changesOf(0), first.changesOf(1)].every((c) => c !== undefined)).toBe(true);
    expect(await readImageFacts(pulled, first)).toEqual(expected);
    const second = imageFactsScanner('tapped');
    const again = await pullImage(ref, { cacheDir: join(tmp.path, 'tapped-cache'), layerTap: second.tap });
    expect(second.changesOf(0)).toBeUndefined();
    expect(await readImageFacts(again, second)).toEqual(expected);
  });

  it('sees a kernel directory whited out by a later layer as gone', async () => {
    const layout = join(tmp.path, 'layout');
    await buildLayout(layout, {
      layers: [
        { files: { 'usr/lib/modules/1/vmlinuz': 'k', 'usr/lib/modules/1/initramfs.img': 'i' }, compression: 'gzip' },
        { files: { 'usr/lib/modules/.wh.1': '', 'usr/lib/modules/2/vmlinuz': 'k', 'usr/lib/modules/2/initramfs.img': 'i' }, compression: 'gzip' },
      ],
    });
    const pulled = await pullImage(parseReference(`oci:${layout}:latest`), { cacheDir: join(tmp.path, 'cache') });
    expect(await readImageFacts(pulled)).toEqual({ installConfigFiles: [], kernelVersion: '2' });
  });
});
