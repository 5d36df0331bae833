/**
 * What the person chose in the installer, and the pure views of it: the plan screen's
 * lines (what is erased, what is created), the answers file, and the typed confirmation.
 */
import { humanBytes as formatSize } from '../core/progress.js';
import { answerKargs, type InstallAnswers } from '../install/answers.js';
import { selectorFor, type DiskCandidate } from '../disk/inventory.js';
import type { InstallFsType } from '../install/config.js';
import { planInstallLayout } from '../install/to-disk.js';
import { parseRootSize } from '../install/options.js';

/**
 * The answers file's options as the installer holds them: the disk is the one picked from
 * the inventory (the answers keep a selector for it), the image and filesystem are always set,
 * and wiping and the finish action are the installer's own business.
 */
export type InstallChoices = Omit<InstallAnswers, 'source' | 'disk' | 'wipe' | 'filesystem' | 'finish'> & {
  source: string;
  disk: DiskCandidate;
  filesystem: InstallFsType;
};

/** Kernel arguments as typed on one line: split on blanks, keeping "quoted values" whole. */
export function splitKargs(line: string): string[] {
  return line.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

export function describeDisk(d: DiskCandidate): string {
  return [d.path, formatSize(d.sizeBytes), d.model, d.serial ? `serial ${d.serial}` : null, d.transport].filter(Boolean).join(', ');
}

/** The plan screen: every existing thing that is erased, then every new thing created. */
export function renderPlan(c: InstallChoices): string[] {
  const layout = planInstallLayout(c.disk.path, c.disk.sizeBytes, c.rootSize !== undefined ? parseRootSize(c.rootSize) : undefined);
  const lines = [`ERASE all of ${describeDisk(c.disk)}:`];
  if (c.disk.partitions.length === 0 && c.disk.pttype === null && c.disk.fstype === null) lines.push('  (it holds no partitions or filesystems)');
  if (c.disk.fstype !== null) lines.push(`  ${c.disk.fstype} filesystem on the whole disk`);
  if (c.disk.partitions.length === 0 && c.disk.pttype !== null) lines.push(`  ${c.disk.pttype} partition table`);
  for (const p of c.disk.partitions) {
    lines.push(`  ${p.path}  ${formatSize(p.sizeBytes)}${p.fstype ? `  ${p.fstype}` : ''}${p.label ? `  "${p.label}"` : ''}`);
  }
  const unused = layout.totalBytes - layout.root.startBytes - layout.root.sizeBytes;
  lines.push(
    '',
    `CREATE a GPT partition table on ${c.disk.path}:`,
    `  1  ${formatSize(layout.esp.sizeBytes)}  EFI system partition (FAT), systemd-boot`,
    `  2  ${formatSize(layout.root.sizeBytes)}  root, ${c.filesystem}${c.rootSize === undefined ? ' (rest of the disk)' : ''}`,
  );
  if (c.rootSize !== undefined && unused > 2 * 1024 * 1024) lines.push(`     ${formatSize(unused)} left unpartitioned`);
  const kargs = answerKargs(c);
  lines.push(
    '',
    `INSTALL ${c.source}`,
    ...(c.target !== undefined ? [`  updates from: ${c.target}`] : []),
    `  kernel arguments: ${kargs.length > 0 ? kargs.join(' ') : '(the image\'s own)'}`,
    ...(c.hostname !== undefined ? [`  host name: ${c.hostname}`] : []),
    ...(c.rootSshAuthorizedKeys !== undefined ? [`  root SSH keys from ${c.rootSshAuthorizedKeys}`] : []),
    ...(c.stateroot !== undefined ? [`  stateroot: ${c.stateroot}`] : []),
    ...(c.user !== undefined ? [`  user: ${c.user.name} (password hash given${c.user.groups.length > 0 ? `, groups ${c.user.groups.join(',')}` : ''})`] : []),
  );
  return lines;
}

/** The confirmation accepts the device path, its name without /dev/, or "yes"; nothing else. */
export function confirmsErase(typed: string, disk: DiskCandidate): boolean {
  const t = typed.trim();
  return t === 'yes' || t === disk.path || (disk.path.startsWith('/dev/') && t === disk.path.slice('/dev/'.length));
}

export function answersOf(c: InstallChoices): InstallAnswers {
  return {
    source: c.source,
    ...(c.target !== undefined ? { target: c.target } : {}),
    disk: selectorFor(c.disk),
    wipe: true,
    filesystem: c.filesystem,
    ...(c.rootSize !== undefined ? { rootSize: c.rootSize } : {}),
    kargs: c.kargs,
    ...(c.rootSshAuthorizedKeys !== undefined ? { rootSshAuthorizedKeys: c.rootSshAuthorizedKeys } : {}),
    ...(c.hostname !== undefined ? { hostname: c.hostname } : {}),
    ...(c.stateroot !== undefined ? { stateroot: c.stateroot } : {}),
    ...(c.user !== undefined ? { user: c.user } : {}),
  };
}
