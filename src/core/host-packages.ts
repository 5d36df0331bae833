/**
 * Which Debian package provides each external program we run, so a missing tool ends in
 * "install the Debian package X" rather than a bare ENOENT.
 */
const PACKAGE_OF: Readonly<Record<string, string>> = {
  sfdisk: 'fdisk',
  'mkfs.ext4': 'e2fsprogs',
  'e2fsck': 'e2fsprogs',
  tune2fs: 'e2fsprogs',
  mke2fs: 'e2fsprogs',
  debugfs: 'e2fsprogs',
  resize2fs: 'e2fsprogs',
  fallocate: 'util-linux',
  stdbuf: 'coreutils',
  'mkfs.btrfs': 'btrfs-progs',
  'mkfs.xfs': 'xfsprogs',
  'mkfs.fat': 'dosfstools',
  'mkfs.vfat': 'dosfstools',
  'fsck.vfat': 'dosfstools',
  mcopy: 'mtools',
  mmd: 'mtools',
  mdir: 'mtools',
  mdel: 'mtools',
  mren: 'mtools',
  mformat: 'mtools',
  'qemu-img': 'qemu-utils',
  'qemu-system-x86_64': 'qemu-system-x86',
  losetup: 'mount',
  mount: 'mount',
  umount: 'mount',
  lsblk: 'util-linux',
  blkid: 'util-linux',
  wipefs: 'util-linux',
  findmnt: 'util-linux',
  fstrim: 'util-linux',
  udevadm: 'udev',
  setfattr: 'attr',
  getfattr: 'attr',
  cpio: 'cpio',
  zstd: 'zstd',
  gzip: 'gzip',
  xz: 'xz-utils',
  lz4: 'lz4',
  bzip2: 'bzip2',
  sbsign: 'sbsigntool',
  xorriso: 'xorriso',
  mksquashfs: 'squashfs-tools',
  sbverify: 'sbsigntool',
  objdump: 'binutils',
  skopeo: 'skopeo',
  gpgv: 'gpgv',
  podman: 'podman',
  mmdebstrap: 'mmdebstrap',
  umoci: 'umoci',
  'docker-registry': 'docker-registry',
  // grub-mkimage itself is in grub-common, which grub-pc-bin pulls in with the i386-pc modules it needs.
  'grub-mkimage': 'grub-pc-bin',
};

export function debianPackageFor(program: string): string | undefined {
  const base = program.split('/').pop() ?? program;
  return PACKAGE_OF[base];
}
