/**
 * Boots fixture:v1 without any of this project's install code: its unpacked rootfs becomes
 * an ext4 disk image (`mkfs.ext4 -d`, no loop device, no mount) and qemu starts v1's own
 * kernel and initramfs directly. Proves the fixture and the harness, and is what
 * `make demo` shows.
 */
import { open } from 'node:fs/promises';
import { run } from '../src/core/exec.js';
import { v1Initramfs, v1Kernel, v1RootfsDir } from '../fixtures/paths.js';
import type { VmOptions } from './harness.js';

/** v1 unpacked is ~0.5 GB; the rest is room for the boot to write to /var. */
const ROOT_DISK_BYTES = 2 * 1024 ** 3;

/** Writes a sparse raw disk image holding an ext4 filesystem with v1's rootfs. */
export async function buildV1RootDisk(path: string): Promise<string> {
  const file = await open(path, 'w');
  await file.truncate(ROOT_DISK_BYTES);
  await file.close();
  await run({
    description: 'Creating an ext4 root disk from the fixture:v1 rootfs',
    argv: ['mkfs.ext4', '-q', '-F', '-L', 'fixture-root', '-d', v1RootfsDir, path],
    hint: 'the v1 rootfs is root-owned: run as root',
  });
  return path;
}

export function v1DirectBootOptions(disk: string, name: string): VmOptions {
  return {
    name,
    boot: { kind: 'kernel', kernel: v1Kernel, initrd: v1Initramfs, append: 'root=/dev/vda rw console=ttyS0' },
    disks: [{ path: disk, format: 'raw', cache: 'unsafe' }],
  };
}
