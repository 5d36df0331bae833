/** Small initramfs contents for tests: what dracut's systemd initrd and initramfs-tools' look like to bootc. */
import type { CpioEntry } from '../../src/boot/cpio.js';

/** dracut with its systemd module: /init is a link to systemd. */
export const systemdInitrd: CpioEntry[] = [
  { kind: 'directory', path: 'usr' },
  { kind: 'directory', path: 'usr/lib' },
  { kind: 'directory', path: 'usr/lib/systemd' },
  { kind: 'file', path: 'usr/lib/systemd/systemd', content: '\x7fELF systemd', mode: 0o755 },
  { kind: 'symlink', path: 'init', target: 'usr/lib/systemd/systemd' },
  { kind: 'directory', path: 'etc' },
  { kind: 'file', path: 'etc/initrd-release', content: 'NAME=test\n' },
];

/** initramfs-tools: /init is a shell script. */
export const scriptInitrd: CpioEntry[] = [
  { kind: 'file', path: 'init', content: '#!/bin/sh\nexec run-init /root /sbin/init\n', mode: 0o755 },
  { kind: 'directory', path: 'scripts' },
  { kind: 'file', path: 'scripts/local', content: '# initramfs-tools\n' },
];
