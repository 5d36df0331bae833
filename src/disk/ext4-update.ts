/**
 * Updating an ext4 filesystem built from one staged tree so it holds another, without a
 * mount: what a rebuild changes is usually one layer, and writing the whole filesystem
 * again (mkfs.ext4 -d) costs as much as the first build.
 *
 *   1. plan: compare the two trees' manifests (disk/tree-manifest.ts) in one pass; read
 *      them again for the link counts of the inodes whose names changed
 *   2. render a debugfs script, in this order:
 *        the deployment's new id: its directory and files renamed (link, unlink)
 *        inodes no name of the new tree keeps: freed (kill_file)
 *        inodes kept under other names: held by a link in a directory of our own
 *        removed names, deepest first (unlink, rm, rmdir)
 *        added names, parents first (mkdir, write, symlink, mknod; then link for the
 *        further names of an inode), their mode, owner, mtime and xattrs
 *        changed directories' mode, owner and mtime
 *      and, to run once all of that succeeded: the link counts of the inodes whose names
 *      changed, the holding directory removed
 *   3. run it (`debugfs -w -f`), reading its output for errors: debugfs reports them but
 *      exits 0. A link into a full directory without an index fails (debugfs's `ln` does
 *      not grow a directory, as `write` and `mkdir` do); the directory is expanded and the
 *      link made again. Any other error fails the update.
 *
 * The caller then checks the filesystem (`e2fsck -fn` must find nothing) and falls back to
 * building it whole on any failure, so an update is never a disk with a wrong tree.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../core/exec.js';
import type { Xattr } from '../store/object-id.js';
import {
  UnmanifestableTree,
  comparePaths,
  manifestLines,
  parseEntry,
  pathOfLine,
  type ManifestAlias,
  type ManifestEntry,
} from './tree-manifest.js';

export interface TreeUpdatePlan {
  commands: string[];
  /** Run once `commands` all succeeded: link counts set, the holding directory removed. */
  finish: string[];
  /** Files with xattr values the script's `ea_set -f` reads. */
  valueFiles: { path: string; value: Buffer }[];
  added: number;
  removed: number;
  changedDirectories: number;
}

export interface PlanOptions {
  oldManifest: string;
  newManifest: string;
  /** The staged tree the new manifest describes: where `write` reads files from. */
  sourceRoot: string;
  oldAlias?: ManifestAlias;
  newAlias?: ManifestAlias;
  /** Attributes of the new tree's entries, by absolute path (writeTreeManifest's result). */
  xattrs: ReadonlyMap<string, readonly Xattr[]>;
  /** Where xattr values are written for the script. */
  workDir: string;
  /** Give up (null) when more entries than this change: building whole is then as quick. */
  maxChanges: number;
}

const TYPE_BITS: Readonly<Record<ManifestEntry['type'], number>> = { d: 0o040000, f: 0o100000, l: 0o120000, c: 0o020000, b: 0o060000, p: 0o010000, s: 0o140000 };
/** The directory holding inodes while their names change; no image has it at its root. */
const HOLD_DIR = '/.bootc-ext4-update';
/** Bytes a held name takes in a directory block (8-byte header, name of ≤ 8 digits). */
const HOLD_ENTRY_BYTES = 16;
const DIRECTORY_BLOCK_PAYLOAD = 4096 - 12 - 24;

/** debugfs's quoting: one argument in double quotes, a quote inside written twice. */
export const quoteArg = (text: string): string => `"${text.replaceAll('"', '""')}"`;

/** The real path of a manifest path: the aliased name put back. */
function realPath(path: string, alias: ManifestAlias | undefined): string {
  if (!alias) return path;
  const prefix = `${alias.dir}/@`;
  if (path !== prefix && !path.startsWith(`${prefix}/`) && !path.startsWith(`${prefix}.`)) return path;
  return `${alias.dir}/${alias.name}${path.slice(prefix.length)}`;
}

const isLinked = (e: ManifestEntry): boolean => e.identity.startsWith('i');

/** Pairs of lines with the same path, or a line of one side only, in manifest order. */
function* mergeManifests(oldFile: string, newFile: string): Generator<[string | undefined, string | undefined]> {
  const olds = manifestLines(oldFile);
  const news = manifestLines(newFile);
  let o = olds.next();
  let n = news.next();
  while (!o.done || !n.done) {
    if (o.done) {
      yield [undefined, n.value];
      n = news.next();
    } else if (n.done) {
      yield [o.value, undefined];
      o = olds.next();
    } else {
      const order = comparePaths(pathOfLine(o.value), pathOfLine(n.value));
      if (order === 0) {
        yield [o.value, n.value];
        o = olds.next();
        n = news.next();
      } else if (order < 0) {
        yield [o.value, undefined];
        o = olds.next();
      } else {
        yield [undefined, n.value];
        n = news.next();
      }
    }
  }
}

/** Step 1 and 2: the script that turns the old tree's filesystem into the new tree's, or null when too much changed. */
export function planTreeUpdate(options: PlanOptions): TreeUpdatePlan | null {
  const removed: ManifestEntry[] = [];
  const added: ManifestEntry[] = [];
  const changedDirectories: ManifestEntry[] = [];
  const touched = new Set<string>();
  const renamed: string[] = [];
  const aliasPrefix = options.oldAlias ? `${options.oldAlias.dir}/@` : null;
  for (const [oldLine, newLine] of mergeManifests(options.oldManifest, options.newManifest)) {
    if (oldLine !== undefined && aliasPrefix !== null) {
      const path = pathOfLine(oldLine);
      if (path.startsWith(aliasPrefix) && !path.slice(aliasPrefix.length).includes('/')) renamed.push(path);
    }
    if (oldLine === newLine) continue;
    const before = oldLine === undefined ? undefined : parseEntry(oldLine);
    const after = newLine === undefined ? undefined : parseEntry(newLine);
    if (before?.type === 'd' && after?.type === 'd') {
      // mke2fs -d gives the root its own mode and owner, not the staged directory's.
      if (after.path === '/') continue;
      if (before.xattrs !== after.xattrs) throw new UnmanifestableTree(`the extended attributes of ${after.path} changed`);
      changedDirectories.push(after);
      continue;
    }
    if (before) removed.push(before);
    if (after) added.push(after);
    for (const e of [before, after]) if (e && isLinked(e)) touched.add(e.identity);
    if (removed.length + added.length > options.maxChanges) return null;
  }

  // The names each changed inode has before and after.
  const oldCount = new Map<string, number>();
  const oldPath = new Map<string, string>();
  const newCount = new Map<string, number>();
  if (touched.size > 0) {
    for (const line of manifestLines(options.oldManifest)) {
      const [path, , identity] = line.split('\t', 3) as [string, string, string];
      if (!touched.has(identity)) continue;
      oldCount.set(identity, (oldCount.get(identity) ?? 0) + 1);
      if (!oldPath.has(identity)) oldPath.set(identity, path);
    }
    for (const line of manifestLines(options.newManifest)) {
      const identity = line.split('\t', 3)[2]!;
      if (touched.has(identity)) newCount.set(identity, (newCount.get(identity) ?? 0) + 1);
    }
  }

  const commands: string[] = [];
  const valueFiles: TreeUpdatePlan['valueFiles'] = [];
  const at = (path: string): string => quoteArg(realPath(path, options.newAlias));
  const source = (path: string): string => quoteArg(join(options.sourceRoot, realPath(path, options.newAlias)));

  // The deployment's id changed: its names are renamed first, and every path below is the new one.
  if (options.oldAlias && options.newAlias && options.oldAlias.name !== options.newAlias.name) {
    for (const path of renamed) {
      commands.push(`ln ${quoteArg(realPath(path, options.oldAlias))} ${at(path)}`, `unlink ${quoteArg(realPath(path, options.oldAlias))}`);
    }
  }

  for (const identity of touched) {
    if ((oldCount.get(identity) ?? 0) > 0 && (newCount.get(identity) ?? 0) === 0) commands.push(`kill_file ${at(oldPath.get(identity)!)}`);
  }
  const held = new Map<string, string>();
  for (const identity of touched) {
    if ((oldCount.get(identity) ?? 0) === 0 || (newCount.get(identity) ?? 0) === 0) continue;
    if (held.size === 0) {
      commands.push(`mkdir ${quoteArg(HOLD_DIR)}`);
      const blocks = Math.ceil((touched.size * HOLD_ENTRY_BYTES) / DIRECTORY_BLOCK_PAYLOAD);
      for (let i = 0; i < blocks; i++) commands.push(`expand_dir ${quoteArg(HOLD_DIR)}`);
    }
    const hold = `${HOLD_DIR}/${held.size}`;
    held.set(identity, hold);
    commands.push(`ln ${at(oldPath.get(identity)!)} ${quoteArg(hold)}`);
  }

  for (const e of removed.reverse()) {
    if (e.type === 'd') commands.push(`rmdir ${at(e.path)}`);
    else commands.push(`${isLinked(e) ? 'unlink' : 'rm'} ${at(e.path)}`);
  }

  const setMetadata = (e: ManifestEntry): void => {
    const p = at(e.path);
    commands.push(`sif ${p} mode 0${(TYPE_BITS[e.type] | e.mode).toString(8)}`, `sif ${p} uid ${e.uid}`, `sif ${p} gid ${e.gid}`, `sif ${p} mtime @${e.mtime}`);
  };
  const setXattrs = (e: ManifestEntry): void => {
    if (e.xattrs === '-') return;
    const xattrs = options.xattrs.get(join(options.sourceRoot, realPath(e.path, options.newAlias)));
    if (!xattrs) throw new UnmanifestableTree(`the extended attributes of ${e.path} were not read`);
    for (const x of xattrs) {
      const file = join(options.workDir, `xattr-${valueFiles.length}`);
      valueFiles.push({ path: file, value: x.value });
      commands.push(`ea_set -f ${quoteArg(file)} ${at(e.path)} ${quoteArg(x.name)}`);
    }
  };
  const create = (e: ManifestEntry): void => {
    const p = at(e.path);
    switch (e.type) {
      case 'd':
        commands.push(`mkdir ${p}`);
        break;
      case 'f':
        commands.push(`write ${source(e.path)} ${p}`);
        break;
      case 'l':
        commands.push(`symlink ${p} ${quoteArg(e.identity.slice(1))}`);
        break;
      case 'c':
      case 'b':
      case 'p': {
        // debugfs's mknod takes a name in the current directory, not a path.
        const real = realPath(e.path, options.newAlias);
        const node = e.type === 'p' ? 'p' : `${e.type} ${e.identity.slice(1).replace(':', ' ')}`;
        commands.push(`cd ${quoteArg(real.slice(0, real.lastIndexOf('/')) || '/')}`, `mknod ${quoteArg(real.slice(real.lastIndexOf('/') + 1))} ${node}`, 'cd /');
        break;
      }
      case 's':
        throw new UnmanifestableTree(`${e.path} is a socket`);
    }
    setMetadata(e);
    setXattrs(e);
  };
  const firstName = new Map<string, string>();
  for (const e of added) {
    if (!isLinked(e)) {
      create(e);
      continue;
    }
    const hold = held.get(e.identity);
    const first = firstName.get(e.identity);
    if (hold !== undefined) commands.push(`ln ${quoteArg(hold)} ${at(e.path)}`);
    else if (first !== undefined) commands.push(`ln ${at(first)} ${at(e.path)}`);
    else {
      if (e.type !== 'f') throw new UnmanifestableTree(`${e.path}: a ${e.type} with more than one name`);
      create(e);
      firstName.set(e.identity, e.path);
    }
  }
  for (const e of changedDirectories) setMetadata(e);

  const finish: string[] = [];
  for (const [identity, hold] of held) finish.push(`sif ${quoteArg(hold)} links_count ${newCount.get(identity)!}`, `unlink ${quoteArg(hold)}`);
  if (held.size > 0) finish.push(`rmdir ${quoteArg(HOLD_DIR)}`);
  for (const [identity, first] of firstName) {
    const count = newCount.get(identity)!;
    if (count > 1) finish.push(`sif ${at(first)} links_count ${count}`);
  }
  return { commands, finish, valueFiles, added: added.length, removed: removed.length, changedDirectories: changedDirectories.length };
}

/** What went wrong with one command of a debugfs run. */
interface FailedCommand {
  command: string;
  message: string;
}

/** Commands debugfs reported an error for: each echoed as `debugfs: <command>`, followed by what it printed. */
export function failedCommands(output: string): FailedCommand[] {
  const failed: FailedCommand[] = [];
  let current: string | null = null;
  for (const line of output.split('\n')) {
    if (line.startsWith('debugfs: ')) {
      current = line.slice('debugfs: '.length);
      continue;
    }
    if (line === '' || current === null || /^Allocated inode: \d+$/.test(line)) continue;
    failed.push({ command: current, message: line.trim() });
  }
  return failed;
}

/** debugfs's complaint when a directory without an index has no room for another name. */
const NO_ROOM = /No free space in the directory/;
/** A full directory is expanded at most this many times before the update gives up. */
const MAX_EXPANSIONS = 8;

/** Step 3: runs the plan against the filesystem at `device` (`file?offset=N` for one inside a disk image). */
export async function applyTreeUpdate(device: string, plan: TreeUpdatePlan, workDir: string): Promise<{ expansions: number }> {
  for (const { path, value } of plan.valueFiles) writeFileSync(path, value, { mode: 0o600 });
  let pending = plan.commands;
  let expansions = 0;
  for (let round = 0; pending.length > 0; round++) {
    const failed = await runDebugfs(device, pending, join(workDir, `debugfs-${round}.txt`));
    const retry = failed.filter((f) => NO_ROOM.test(f.message) && f.command.startsWith('ln '));
    if (retry.length < failed.length || (retry.length > 0 && round >= MAX_EXPANSIONS)) throw debugfsError(failed.find((f) => !retry.includes(f)) ?? retry[0]!, failed.length);
    // Each full directory gets one more block, then the links are made again.
    const directories = new Set(retry.map((f) => parentOfQuoted(f.command)));
    expansions += directories.size;
    pending = [...[...directories].map((d) => `expand_dir ${d}`), ...retry.map((f) => f.command)];
  }
  if (plan.finish.length > 0) {
    const failed = await runDebugfs(device, plan.finish, join(workDir, 'debugfs-finish.txt'));
    if (failed.length > 0) throw debugfsError(failed[0]!, failed.length);
  }
  return { expansions };
}

async function runDebugfs(device: string, commands: readonly string[], script: string): Promise<FailedCommand[]> {
  writeFileSync(script, commands.join('\n') + '\n', { mode: 0o600 });
  // stdout unbuffered and stderr on the same pipe: each error follows the command it is about.
  const { stdout } = await run({
    description: 'Updating the root filesystem in place (debugfs)',
    argv: ['sh', '-c', 'exec stdbuf -o0 debugfs -w -f "$1" "$2" 2>&1', 'debugfs', script, device],
    env: { DEBUGFS_PAGER: '__none__' },
  });
  return failedCommands(stdout);
}

const debugfsError = (first: FailedCommand, count: number): Error =>
  new Error(`debugfs: ${first.command}: ${first.message}${count > 1 ? ` (and ${count - 1} more)` : ''}`);

/** The quoted parent directory of an `ln "<from>" "<to>"` command's target. */
function parentOfQuoted(command: string): string {
  const to = /"((?:[^"]|"")*)"$/.exec(command)![1]!.replaceAll('""', '"');
  return quoteArg(to.slice(0, to.lastIndexOf('/')) || '/');
}
