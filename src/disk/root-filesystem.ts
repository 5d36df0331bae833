/**
 * The root filesystem of a disk image, made from a staged directory without a loop device
 * or a mount:
 *
 *   ext4   `mkfs.ext4 -d <dir> -E offset=<bytes>` straight into the disk image; e2fsprogs
 *          keeps owners, modes, hardlinks and xattrs (security.capability, ACLs). It is
 *          populated without metadata checksums, which are then added in one pass (tune2fs,
 *          then `e2fsck -fyD`, which also indexes large directories): with them on, mke2fs
 *          recomputes a directory block's checksum for every entry it adds, a third of its
 *          time on a 2 GiB image. The result has the features a plain mkfs.ext4 gives.
 *   btrfs  `mkfs.btrfs --rootdir` into a file of its own, then copied to the offset (it has
 *          no offset option); hardlinks and xattrs are kept.
 *   xfs    needs a loop device and a mount to populate (mkfs.xfs protofiles drop xattrs and
 *          hardlinks): refused with a hint.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/exec.js';
import { UserError, withContext } from '../core/errors.js';
import { MiB, alignUp, formatSize } from './gpt.js';

export type RootFsType = 'ext4' | 'btrfs' | 'xfs';
export const ROOT_FS_LABEL = 'root';

export interface TreeSize {
  /** File data rounded up to 4 KiB blocks, each inode counted once (hardlinks share one). */
  dataBytes: number;
  inodes: number;
}

const BLOCK = 4096;
/** ext4 symlinks shorter than this live in the inode. */
const INLINE_SYMLINK_BYTES = 60;

/**
 * Walks `dir` (not following symlinks) and adds up what a filesystem has to hold. By
 * synchronous calls: a staged root has 200k entries, and an lstat each through the thread
 * pool took 10.6 s where this takes 2.2 s (nothing else runs while a disk is planned).
 */
export async function measureTree(dir: string): Promise<TreeSize> {
  return withContext(`Measuring ${dir}`, async () => {
    /** dev:ino of files with more than one link: a hardlinked file is held once. */
    const linked = new Set<string>();
    let dataBytes = 0;
    let inodes = 0;
    const walk = (path: string): void => {
      inodes++;
      dataBytes += BLOCK;
      for (const entry of readdirSync(path, { withFileTypes: true })) {
        const child = join(path, entry.name);
        if (entry.isDirectory()) {
          walk(child);
          continue;
        }
        const st = lstatSync(child);
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          if (linked.has(key)) continue;
          linked.add(key);
        }
        inodes++;
        if (st.isFile()) dataBytes += alignUp(st.size, BLOCK);
        else if (st.isSymbolicLink() && st.size >= INLINE_SYMLINK_BYTES) dataBytes += BLOCK;
      }
    };
    walk(dir);
    return { dataBytes, inodes };
  });
}

/** mke2fs's default for filesystems of this size: one inode per 16 KiB. */
const EXT4_BYTES_PER_INODE = 16 * 1024;
/** Journal, group descriptors, bitmaps, reserved blocks: generous, since running out mid-mkfs wastes the build. */
const EXT4_FIXED_OVERHEAD_BYTES = 160 * MiB;
const EXT4_OVERHEAD_FACTOR = 1.15;
/** btrfs keeps two copies of metadata (DUP) and needs chunk space. */
const BTRFS_FIXED_OVERHEAD_BYTES = 256 * MiB;
const BTRFS_OVERHEAD_FACTOR = 1.3;
/** Free space a booted system gets by default, like bootc-image-builder's 2x the image. */
const DEFAULT_GROWTH_FACTOR = 2;

/** The smallest filesystem that certainly holds the tree. */
export function rootFsMinBytes(tree: TreeSize, fsType: RootFsType): number {
  const perInode = tree.inodes * 256;
  const needed =
    fsType === 'btrfs'
      ? (tree.dataBytes + perInode) * BTRFS_OVERHEAD_FACTOR + BTRFS_FIXED_OVERHEAD_BYTES
      : Math.max((tree.dataBytes + perInode) * EXT4_OVERHEAD_FACTOR + EXT4_FIXED_OVERHEAD_BYTES, tree.inodes * EXT4_BYTES_PER_INODE * 1.2);
  return alignUp(needed, MiB);
}

/** The default: room to grow, never less than the minimum. */
export function rootFsDefaultBytes(tree: TreeSize, fsType: RootFsType): number {
  return Math.max(rootFsMinBytes(tree, fsType), alignUp(tree.dataBytes * DEFAULT_GROWTH_FACTOR, MiB));
}

export function checkRootFsSupported(fsType: RootFsType): void {
  if (fsType === 'xfs') {
    throw new UserError('an xfs root filesystem cannot be built without a loop device', {
      hint: 'use --rootfs ext4 or --rootfs btrfs, or install to a loop device as root with `bootc install to-disk --via-loopback`',
    });
  }
}

export interface RootFsTarget {
  image: string;
  offsetBytes: number;
  sizeBytes: number;
  uuid: string;
}

/** Creates the root filesystem from `sourceDir` inside `target.image` at its offset. */
export async function makeRootFilesystem(fsType: RootFsType, sourceDir: string, target: RootFsTarget, workDir: string): Promise<void> {
  checkRootFsSupported(fsType);
  if (fsType === 'ext4') {
    await run({
      description: `Creating the ext4 root filesystem (${formatSize(target.sizeBytes)}) from ${sourceDir}`,
      argv: [
        'mkfs.ext4', '-q', '-F',
        '-L', ROOT_FS_LABEL,
        '-U', target.uuid,
        '-O', '^metadata_csum',
        '-d', sourceDir,
        '-E', `offset=${target.offsetBytes}`,
        target.image,
        `${target.sizeBytes / 1024}k`,
      ],
      hint: 'the staged files must be readable: run as root when they are owned by other users',
    });
    // libext2fs opens `<file>?offset=<bytes>` at that offset (tune2fs and e2fsck have no option for it).
    const atOffset = `${target.image}?offset=${target.offsetBytes}`;
    await run({ description: 'Adding metadata checksums to the root filesystem', argv: ['tune2fs', '-O', 'metadata_csum', atOffset] });
    // e2fsck exits 1 when it changed the filesystem, which -D (rebuilding directories with room for their checksums) always does.
    await run({ description: 'Checksumming and indexing the root filesystem directories', argv: ['e2fsck', '-f', '-y', '-D', atOffset], okExitCodes: [0, 1] });
    return;
  }
  const separate = join(workDir, 'root.btrfs');
  try {
    const file = await open(separate, 'w');
    await file.truncate(target.sizeBytes);
    await file.close();
    await run({
      description: `Creating the btrfs root filesystem (${formatSize(target.sizeBytes)}) from ${sourceDir}`,
      argv: ['mkfs.btrfs', '-q', '-f', '-L', ROOT_FS_LABEL, '-U', target.uuid, '--rootdir', sourceDir, separate],
      hint: 'the staged files must be readable: run as root when they are owned by other users',
    });
    await run({
      description: 'Copying the btrfs root filesystem into the disk image',
      argv: [
        'dd', `if=${separate}`, `of=${target.image}`, `bs=${MiB}`, `seek=${target.offsetBytes / MiB}`,
        'conv=notrunc,sparse', 'status=none',
      ],
    });
  } finally {
    await rm(separate, { force: true });
  }
}
