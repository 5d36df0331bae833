/**
 * Files an install writes into the new system, rendered from data (pure; install.ts
 * writes them): the deployment's /etc/fstab, the root SSH key as a tmpfiles.d snippet, and
 * the install record `/.bootc-aleph.json` at the top of the physical root.
 */
import { posix } from 'node:path';

export const ROOT_SSH_TMPFILES = 'etc/tmpfiles.d/bootc-root-ssh.conf';
export const ALEPH_FILE = '.bootc-aleph.json';

export interface FstabMount {
  /** `UUID=…`, `LABEL=…` or a device path. */
  spec: string;
  mountpoint: string;
  fsType: string;
  options: string;
}

/**
 * The root line lets systemd-remount-fs apply the options; the ESP at /boot with a private
 * umask so boot counting (renaming entries) works and the loader files stay root's. Neither
 * is fsck'd at boot: the root is mounted by the initrd, and the image may lack fsck.vfat.
 */
export function renderFstab(existing: string, mounts: readonly FstabMount[]): string {
  const taken = new Set(mounts.map((m) => m.mountpoint));
  const kept = existing
    .split('\n')
    .filter((line) => {
      const fields = line.trim().split(/\s+/);
      return line.trim().startsWith('#') || fields.length < 2 || !taken.has(fields[1]!);
    })
    .join('\n')
    .trimEnd();
  const lines = mounts.map((m) => `${m.spec} ${m.mountpoint} ${m.fsType} ${m.options} 0 0`);
  return (kept ? kept + '\n' : '') + lines.join('\n') + '\n';
}

/**
 * Upstream's form: `f~` writes the base64-decoded argument, once, if the file is missing.
 * `rootHome` is where /root really lives in the image (bootc images link it to /var/roothome),
 * since tmpfiles refuses to follow a symlink it does not own.
 */
export function renderRootSshTmpfiles(authorizedKeys: string, rootHome: string): string {
  const keys = authorizedKeys.endsWith('\n') ? authorizedKeys : authorizedKeys + '\n';
  const ssh = posix.join(rootHome, '.ssh');
  return [
    `d ${ssh} 0700 root root -`,
    `f~ ${posix.join(ssh, 'authorized_keys')} 600 root root - ${Buffer.from(keys, 'utf8').toString('base64')}`,
    '',
  ].join('\n');
}

/** The home of root inside the image, following a relative `/root` symlink once. */
export function resolveRootHome(rootLink: string | null): string {
  if (rootLink === null) return '/root';
  return rootLink.startsWith('/') ? posix.normalize(rootLink) : posix.join('/', rootLink);
}

export interface AlephRecord {
  /** The installed image, by digest (`name@sha256:…`). */
  image: string;
  digest: string;
  /** What the system follows for updates. */
  'target-image': string;
  labels: Record<string, string>;
  /** The image's `org.opencontainers.image.version`. */
  version?: string;
  timestamp: string;
  /** The installing host's kernel (`uname -r`). */
  kernel: string;
  selinux: 'disabled';
  /** This tool's version (not in upstream's record). */
  'installer-version': string;
}

export function renderAleph(record: AlephRecord): string {
  return JSON.stringify(record, null, 2) + '\n';
}
