import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import { checkEspSize, prepareDeploymentBoot } from '../../../src/boot/deployment-boot.js';
import { findKernel } from '../../../src/boot/kernel.js';
import { buildAddonInitrd } from '../../../src/boot/prepare-root.js';
import { testDir } from '../../support/temp-tree.js';

describe('a deployment\'s boot files and entry', () => {
  let dir: string;
  let tree: string;
  beforeEach(() => {
    dir = testDir('deployment-boot');
    tree = join(dir, 'tree');
  });

  const put = (path: string, content: string): void => {
    mkdirSync(join(tree, path, '..'), { recursive: true });
    writeFileSync(join(tree, path), content);
  };

  it('finds the one kernel and its initramfs', async () => {
    put('usr/lib/modules/6.1.0-1-amd64/vmlinuz', 'k');
    put('usr/lib/modules/6.1.0-1-amd64/initramfs.img', 'i');
    mkdirSync(join(tree, 'usr/lib/modules/6.1.0-0-amd64')); // leftover modules dir, no kernel
    expect(await findKernel(tree)).toEqual({
      kernelVersion: '6.1.0-1-amd64',
      vmlinuz: join(tree, 'usr/lib/modules/6.1.0-1-amd64/vmlinuz'),
      initramfs: join(tree, 'usr/lib/modules/6.1.0-1-amd64/initramfs.img'),
    });
  });

  it.each([
    ['no kernel', [] as string[], /the image has no kernel/],
    ['no initramfs', ['usr/lib/modules/6.1/vmlinuz'], /the image has no initramfs: \/usr\/lib\/modules\/6.1\/initramfs.img is missing/],
    ['two kernels', ['usr/lib/modules/6.1/vmlinuz', 'usr/lib/modules/6.2/vmlinuz'], /more than one kernel: 6.1, 6.2/],
  ])('refuses an image with %s', async (_what, files, message) => {
    mkdirSync(tree);
    for (const f of files) put(f, 'x');
    const err = await findKernel(tree).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(message);
  });

  it('renders the entry from os-release, kargs.d and the CLI, and writes the combined initrd', async () => {
    put('usr/lib/modules/6.1/vmlinuz', 'kernel');
    put('usr/lib/modules/6.1/initramfs.img', 'initramfs');
    put('usr/lib/os-release', 'PRETTY_NAME="Test OS 1.0"\n');
    put('usr/lib/bootc/kargs.d/10-console.toml', 'kargs = ["console=tty0"]\n');
    put('usr/lib/bootc/kargs.d/20-arm.toml', 'kargs = ["arm"]\nmatch-architectures = ["aarch64"]\n');
    const boot = await prepareDeploymentBoot(
      {
        deploymentDir: tree,
        stateroot: 'os',
        deploymentId: 'd7',
        rootFsUuid: 'f00d',
        bootOrder: 4,
        imageVersion: '42',
        cliKargs: ['quiet'],
        arch: 'x86_64',
      },
      dir,
    );
    expect(boot.entryFileName).toBe('bootc-os-d7+3.conf');
    expect(boot.entry).toEqual({
      title: 'Test OS 1.0 42',
      version: '4',
      sortKey: 'bootc',
      linux: '/bootc/d7/vmlinuz',
      initrd: '/bootc/d7/initrd.img',
      options: 'root=UUID=f00d rw console=tty0 quiet bootc.deploy=os/d7',
    });
    expect(boot.files).toEqual([
      { path: 'bootc/d7/vmlinuz', hostPath: join(tree, 'usr/lib/modules/6.1/vmlinuz') },
      { path: 'bootc/d7/initrd.img', hostPath: join(dir, 'initrd-d7.img') },
    ]);
    const initrd = readFileSync(join(dir, 'initrd-d7.img'));
    expect(initrd.subarray(0, 9).toString()).toBe('initramfs');
    expect(initrd.subarray(12).equals(Buffer.from(buildAddonInitrd()))).toBe(true);
  });

  it('names an unknown kargs.d key and its file', async () => {
    put('usr/lib/modules/6.1/vmlinuz', 'kernel');
    put('usr/lib/modules/6.1/initramfs.img', 'initramfs');
    put('usr/lib/os-release', 'NAME=x\n');
    put('usr/lib/bootc/kargs.d/10-bad.toml', 'kargs = []\nkarg = ["x"]\n');
    const err = await prepareDeploymentBoot(
      { deploymentDir: tree, stateroot: 'os', deploymentId: 'd1', rootFsUuid: 'u', bootOrder: 1 },
      dir,
    ).catch((e: unknown) => e);
    expect((err as Error).message).toContain('usr/lib/bootc/kargs.d/10-bad.toml: unknown key `karg`');
  });

  it('says how big the ESP must be', () => {
    expect(() => checkEspSize(100 * 1024 * 1024, 150 * 1024 * 1024)).toThrow(
      'the ESP of 100 MiB is too small: this image\'s boot files need 150 MiB (room for two deployments)',
    );
    expect(() => checkEspSize(150 * 1024 * 1024, 150 * 1024 * 1024)).not.toThrow();
  });
});
