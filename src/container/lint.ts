/**
 * `bootc container lint`: checks that an image is one bootc can install and update, run
 * as the last step of a Containerfile build (or against an unpacked image with --rootfs).
 * Names, kinds and output lines follow upstream bootc, so build logs read the same.
 *
 * Each lint is a small function over a RootfsView returning "ok" or a message with the
 * offending paths; `runLints` only selects, counts and renders.
 *
 * `baseimage-root` is adapted to our on-disk format: we need no `/sysroot` directory or
 * `/ostree` symlink (the initrd creates `<deployment>/sysroot` and binds the physical root
 * there), but an image that ships content in `/sysroot` would have it hidden under that
 * mount, and `/bootc` is the physical root's store layout, so the image must not ship
 * content in either.
 */
import { readdir, readlink } from 'node:fs/promises';
import { stringify as toYaml } from 'yaml';
import { UserError } from '../core/errors.js';
import { KARGS_D_DIR, parseKargsD } from '../boot/kargs.js';
import { MODULES_DIR } from '../boot/kernel.js';
import { CpioFormatError, inspectInitramfs } from '../boot/initramfs.js';
import { RootfsView } from './rootfs-view.js';

export type LintType = 'fatal' | 'warning';
/** A lint that only makes sense on the running image, or only on an unpacked one. */
export type LintRootType = 'running' | 'alternative';

export type LintOutcome = { ok: true } | { ok: false; message: string; items?: string[] };

export interface Lint {
  name: string;
  type: LintType;
  description: string;
  rootType?: LintRootType;
  check: (root: RootfsView) => Promise<LintOutcome>;
}

const ok: LintOutcome = { ok: true };
const fail = (message: string, items?: string[]): LintOutcome => (items === undefined ? { ok: false, message } : { ok: false, message, items });

/** How many offending paths a message shows unless --no-truncate. */
export const DEFAULT_TRUNCATE = 5;

export const API_BASE_DIRECTORIES = ['dev', 'proc', 'sys', 'run', 'tmp', 'var'] as const;

async function checkVarRun(root: RootfsView): Promise<LintOutcome> {
  const st = await root.lstat('var/run');
  if (st === null || st.isSymbolicLink()) return ok;
  return fail('Not a symlink: var/run');
}

async function checkEtcUsrEtc(root: RootfsView): Promise<LintOutcome> {
  if ((await root.lstat('etc')) !== null && (await root.lstat('usr/etc')) !== null) {
    return fail('Found /usr/etc; the image must put its configuration in /etc only');
  }
  return ok;
}

async function checkBootcKargs(root: RootfsView): Promise<LintOutcome> {
  const entries = await root.readdir(KARGS_D_DIR);
  if (!entries) return ok;
  for (const entry of entries) {
    if (!entry.name.endsWith('.toml')) continue;
    const rel = `${KARGS_D_DIR}/${entry.name}`;
    const text = await root.readText(rel);
    if (text === null) return fail(`/${rel} is not a regular file`);
    try {
      parseKargsD(`/${rel}`, text);
    } catch (err) {
      if (err instanceof UserError) return fail(err.hint ? `${err.message} (${err.hint})` : err.message);
      throw err;
    }
  }
  return ok;
}

/** A sealed UKI shipped in the image stands in for vmlinuz + initramfs. */
async function shippedUkis(root: RootfsView): Promise<string[]> {
  const inBoot = ((await root.readdir('boot/EFI/Linux')) ?? []).filter((e) => e.name.endsWith('.efi')).map((e) => `/boot/EFI/Linux/${e.name}`);
  const inModules: string[] = [];
  for (const dir of (await root.readdir(MODULES_DIR)) ?? []) {
    const rel = `${MODULES_DIR}/${dir.name}/${dir.name}.efi`;
    if ((await root.lstat(rel))?.isFile()) inModules.push(`/${rel}`);
  }
  return [...inModules, ...inBoot];
}

async function checkKernel(root: RootfsView): Promise<LintOutcome> {
  const kernels: string[] = [];
  for (const dir of (await root.readdir(MODULES_DIR)) ?? []) {
    if ((await root.lstat(`${MODULES_DIR}/${dir.name}/vmlinuz`))?.isFile()) kernels.push(dir.name);
  }
  if (kernels.length > 1) return fail('Multiple kernels found', kernels.map((k) => `/${MODULES_DIR}/${k}`));
  if (kernels.length === 0) {
    if ((await shippedUkis(root)).length > 0) return ok;
    return fail(`No kernel found: expected /${MODULES_DIR}/<kver>/vmlinuz and initramfs.img`);
  }
  const kver = kernels[0]!;
  if ((await shippedUkis(root)).length > 0) return ok;
  if (!(await root.lstat(`${MODULES_DIR}/${kver}/initramfs.img`))?.isFile()) {
    return fail(`No initramfs: /${MODULES_DIR}/${kver}/initramfs.img is missing`);
  }
  return ok;
}

/** What an installed system runs to update itself (the tool layer puts it there). */
export const BOOTC_IN_IMAGE = 'usr/bin/bootc';

async function checkBootcTool(root: RootfsView): Promise<LintOutcome> {
  const st = await root.lstat(BOOTC_IN_IMAGE);
  if (st?.isFile() || st?.isSymbolicLink()) return ok;
  return fail(
    `No /${BOOTC_IN_IMAGE}: a system installed from this image boots, but can never update itself ` +
      '(add the tool layer: COPY --from=localhost/bootc-ts:latest / /, built by `make tool-image`)',
  );
}

/** The one kernel's initramfs, when there is exactly one and no shipped UKI (the kernel lint covers the rest). */
async function soleInitramfs(root: RootfsView): Promise<string | null> {
  if ((await shippedUkis(root)).length > 0) return null;
  const kernels = ((await root.readdir(MODULES_DIR)) ?? []).filter((d) => d.isDirectory());
  const withInitramfs: string[] = [];
  for (const k of kernels) {
    const rel = `${MODULES_DIR}/${k.name}/initramfs.img`;
    if ((await root.lstat(rel))?.isFile()) withInitramfs.push(rel);
  }
  return withInitramfs.length === 1 ? withInitramfs[0]! : null;
}

async function checkInitramfsSystemd(root: RootfsView): Promise<LintOutcome> {
  const rel = await soleInitramfs(root);
  if (rel === null) return ok;
  const fix = 'build it with dracut and its systemd module: dracut --force --kver <kver> /usr/lib/modules/<kver>/initramfs.img';
  let verdict;
  try {
    verdict = (await inspectInitramfs(root.path(rel))).verdict;
  } catch (err) {
    if (err instanceof CpioFormatError) return fail(`/${rel} cannot be unpacked (${err.message}): the system would not boot; ${fix}`);
    if (err instanceof UserError) return fail(`/${rel} could not be read here: ${err.message}${err.hint ? ` (${err.hint})` : ''}`);
    throw err;
  }
  if (verdict.systemdBased) return ok;
  return fail(`/${rel} is not systemd-based (${verdict.reason}): bootc's initrd step would never run and the system would not boot its deployment; ${fix}`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
function isUtf8(bytes: Uint8Array): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** `dir/name` on raw bytes; `dir` may be `/` itself (lint of the running root). */
export function childPathBytes(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from(dir.at(-1) === 0x2f ? '' : '/'), name]);
}

/** Names are read as bytes: a string API would have replaced the bad sequences already. */
async function checkUtf8(root: RootfsView): Promise<LintOutcome> {
  const bad: string[] = [];
  const rootPath = Buffer.from(root.root);
  const show = (path: Buffer): string => '/' + path.subarray(rootPath.length).toString('latin1').replace(/^\/+/, '');
  const walk = async (dir: Buffer, relText: string): Promise<void> => {
    if (relText !== '' && (await root.isOtherFilesystem(relText))) return;
    const entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
    for (const entry of entries) {
      const name = entry.name as unknown as Buffer;
      const child = childPathBytes(dir, name);
      if (!isUtf8(name)) {
        bad.push(`Invalid UTF-8 filename: ${show(child)}`);
        continue;
      }
      const childRel = relText === '' ? name.toString('utf8') : `${relText}/${name.toString('utf8')}`;
      if (entry.isSymbolicLink()) {
        const target = await readlink(child, { encoding: 'buffer' });
        if (!isUtf8(target)) bad.push(`Invalid UTF-8 symlink target: ${show(child)}`);
      } else if (entry.isDirectory()) {
        await walk(child, childRel);
      }
    }
  };
  await walk(rootPath, '');
  return bad.length === 0 ? ok : fail('Found non-UTF-8 names', bad);
}

async function checkApiBaseDirectories(root: RootfsView): Promise<LintOutcome> {
  for (const dir of API_BASE_DIRECTORIES) {
    if (!(await root.isDirectory(dir))) return fail(`Missing API filesystem base directory: /${dir}`);
  }
  return ok;
}

async function checkBaseimageRoot(root: RootfsView): Promise<LintOutcome> {
  for (const dir of ['sysroot', 'bootc']) {
    const st = await root.lstat(dir);
    if (st === null) continue;
    if (!st.isDirectory()) return fail(`/${dir} is reserved for the physical root and must be absent or an empty directory`);
    const entries = (await root.readdir(dir)) ?? [];
    if (entries.length > 0) {
      return fail(`/${dir} is reserved for the physical root; the image must not ship content there`, entries.map((e) => `/${dir}/${e.name}`));
    }
  }
  return ok;
}

async function checkVarLog(root: RootfsView): Promise<LintOutcome> {
  const found: string[] = [];
  for await (const { rel, st } of root.walk('var/log')) {
    if (st.isFile() && st.size > 0) found.push(`/${rel}`);
  }
  return found.length === 0 ? ok : fail('Found non-empty logfiles', found);
}

/** The paths tmpfiles.d configuration creates (second column), by the usual precedence. */
export function tmpfilesPaths(configs: ReadonlyMap<string, string>): Set<string> {
  const paths = new Set<string>();
  for (const text of configs.values()) {
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const path = line.split(/\s+/)[1];
      if (path?.startsWith('/')) paths.add(path.replace(/\/+$/, ''));
    }
  }
  return paths;
}

/** Config files of a systemd `*.d` directory set: later directories override by file name. */
async function dropinConfigs(root: RootfsView, dirs: readonly string[], suffix: string): Promise<Map<string, string>> {
  const byName = new Map<string, string>();
  for (const dir of dirs) {
    for (const entry of (await root.readdir(dir)) ?? []) {
      if (!entry.name.endsWith(suffix)) continue;
      const text = await root.readText(`${dir}/${entry.name}`);
      if (text !== null) byName.set(entry.name, text);
    }
  }
  return new Map([...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

async function checkVarTmpfiles(root: RootfsView): Promise<LintOutcome> {
  const declared = tmpfilesPaths(await dropinConfigs(root, ['usr/lib/tmpfiles.d', 'etc/tmpfiles.d'], '.conf'));
  const missing: string[] = [];
  const unsupported: string[] = [];
  for await (const { rel, st } of root.walk('var', (dir) => declared.has(`/${dir}`))) {
    const path = `/${rel}`;
    if (st.isDirectory() || st.isSymbolicLink()) {
      if (!declared.has(path)) missing.push(path);
    } else {
      unsupported.push(path);
    }
  }
  if (missing.length === 0 && unsupported.length === 0) return ok;
  const items = [...missing.map((p) => `missing tmpfiles.d entry: ${p}`), ...unsupported.map((p) => `not a directory or symlink: ${p}`)];
  return fail('Found content in /var that tmpfiles.d does not create', items);
}

export interface SysusersDeclared {
  users: Set<string>;
  groups: Set<string>;
}

/** Users and groups that sysusers.d lines create (`u` makes both, `g` a group). */
export function sysusersDeclared(configs: ReadonlyMap<string, string>): SysusersDeclared {
  const users = new Set<string>();
  const groups = new Set<string>();
  for (const text of configs.values()) {
    for (const raw of text.split('\n')) {
      const [kind, name, id] = raw.trim().split(/\s+/);
      if (!kind || kind.startsWith('#') || !name) continue;
      if (kind === 'u' || kind === 'u!') {
        users.add(name);
        // "u name uid:gid" joins an existing group instead of creating its own
        if (!id?.includes(':')) groups.add(name);
      } else if (kind === 'g') {
        groups.add(name);
      }
    }
  }
  return { users, groups };
}

const entryNames = (text: string | null): string[] =>
  (text ?? '')
    .split('\n')
    .map((l) => l.split(':')[0]!.trim())
    .filter((n) => n !== '' && !n.startsWith('#') && !n.startsWith('+') && !n.startsWith('-'));

async function checkSysusers(root: RootfsView): Promise<LintOutcome> {
  const declared = sysusersDeclared(await dropinConfigs(root, ['usr/lib/sysusers.d', 'etc/sysusers.d'], '.conf'));
  const users = entryNames(await root.readText('etc/passwd')).filter((u) => !declared.users.has(u));
  const groups = entryNames(await root.readText('etc/group')).filter((g) => !declared.groups.has(g));
  if (users.length === 0 && groups.length === 0) return ok;
  return fail('Found /etc/passwd or /etc/group entries without a sysusers.d declaration', [
    ...users.map((u) => `user: ${u}`),
    ...groups.map((g) => `group: ${g}`),
  ]);
}

async function checkNonemptyBoot(root: RootfsView): Promise<LintOutcome> {
  const entries = await root.readdir('boot');
  if (entries === null) return fail('No /boot directory');
  // A sealed UKI lives in /boot/EFI/Linux.
  const content = entries.filter((e) => e.name !== 'EFI').map((e) => `/boot/${e.name}`);
  return content.length === 0 ? ok : fail('Found non-empty /boot', content);
}

/** Podman bind-mounts this over /run during a build; it is not image content. */
const BUILD_INJECTED_RUN = new Set(['run/systemd/resolve/stub-resolv.conf']);

async function checkNonemptyRunTmp(root: RootfsView): Promise<LintOutcome> {
  const found: string[] = [];
  for (const top of ['run', 'tmp']) {
    for await (const { rel, st } of root.walk(top)) {
      if (BUILD_INJECTED_RUN.has(rel) || (await root.isOtherFilesystem(rel))) continue;
      if (st.isDirectory()) {
        const children = (await root.readdir(rel)) ?? [];
        if (children.length > 0) continue; // reported through its contents
      }
      found.push(`/${rel}`);
    }
  }
  return found.length === 0 ? ok : fail('Found content in /run or /tmp', found);
}

async function checkBuildahInjected(root: RootfsView): Promise<LintOutcome> {
  const injected: string[] = [];
  for (const rel of ['etc/hostname', 'etc/resolv.conf']) {
    const st = await root.lstat(rel);
    if (st?.isFile() && st.size === 0) injected.push(`/${rel}`);
  }
  return injected.length === 0 ? ok : fail('Found empty files injected by the build system', injected);
}

/** In upstream's order. */
export const LINTS: readonly Lint[] = [
  { name: 'var-run', type: 'fatal', description: 'Check for /var/run being a physical directory; this is always a bug.', check: checkVarRun },
  {
    name: 'buildah-injected',
    type: 'warning',
    description: 'Check for an empty /etc/hostname or /etc/resolv.conf that a build system injected.',
    rootType: 'alternative',
    check: checkBuildahInjected,
  },
  { name: 'etc-usretc', type: 'fatal', description: 'Verify that only one of /etc or /usr/etc exist.', check: checkEtcUsrEtc },
  { name: 'bootc-kargs', type: 'fatal', description: 'Verify that the kernel arguments in /usr/lib/bootc/kargs.d parse.', check: checkBootcKargs },
  {
    name: 'kernel',
    type: 'fatal',
    description: 'Check for exactly one kernel (/usr/lib/modules/<kver>/vmlinuz with initramfs.img) or a shipped UKI.',
    check: checkKernel,
  },
  {
    name: 'initramfs-systemd',
    type: 'warning',
    description: "Check that the kernel's initramfs is systemd-based (bootc's initrd step is a systemd unit).",
    check: checkInitramfsSystemd,
  },
  {
    name: 'bootc-tool',
    type: 'warning',
    description: 'Check for /usr/bin/bootc, without which an installed system never updates.',
    check: checkBootcTool,
  },
  { name: 'utf8', type: 'fatal', description: 'Check that all filenames and symlink targets are UTF-8.', check: checkUtf8 },
  {
    name: 'api-base-directories',
    type: 'fatal',
    description: `Verify that the API filesystem base directories exist: ${API_BASE_DIRECTORIES.map((d) => `/${d}`).join(' ')}.`,
    check: checkApiBaseDirectories,
  },
  {
    name: 'baseimage-root',
    type: 'fatal',
    description: 'Check that /sysroot and /bootc, reserved for the physical root, are absent or empty.',
    check: checkBaseimageRoot,
  },
  { name: 'var-log', type: 'warning', description: 'Check for non-empty regular files in /var/log.', check: checkVarLog },
  {
    name: 'var-tmpfiles',
    type: 'warning',
    description: 'Check for content in /var that systemd tmpfiles.d does not create.',
    rootType: 'running',
    check: checkVarTmpfiles,
  },
  { name: 'sysusers', type: 'warning', description: 'Check for users and groups in /etc/passwd and /etc/group without sysusers.d entries.', check: checkSysusers },
  { name: 'nonempty-boot', type: 'warning', description: 'The /boot directory should be present and empty (except EFI/ for UKIs).', check: checkNonemptyBoot },
  { name: 'nonempty-run-tmp', type: 'warning', description: 'Check for content in /run and /tmp, which are not persisted.', check: checkNonemptyRunTmp },
];

export const lintNames = (): string[] => LINTS.map((l) => l.name);

/** `--list`: YAML, as upstream prints it. */
export function renderLintList(lints: readonly Lint[] = LINTS): string {
  return toYaml(
    lints.map((l) => ({ name: l.name, type: l.type, description: l.description, ...(l.rootType ? { 'root-type': l.rootType } : {}) })),
  );
}

export interface LintOptions {
  fatalWarnings?: boolean;
  skip?: readonly string[];
  /** Show every offending path instead of the first DEFAULT_TRUNCATE. */
  noTruncate?: boolean;
}

export interface LintReport {
  lines: string[];
  passed: number;
  skipped: number;
  warnings: number;
  failed: number;
}

export function renderOutcome(message: string, items: readonly string[] | undefined, noTruncate: boolean): string {
  if (!items || items.length === 0) return message;
  const shown = noTruncate ? items : items.slice(0, DEFAULT_TRUNCATE);
  const lines = [`${message}:`, ...shown.map((i) => `  ${i}`)];
  if (shown.length < items.length) lines.push(`  ...and ${items.length - shown.length} more`);
  return lines.join('\n');
}

/** Run the selected lints; the returned report's lines are what the command prints. */
export async function runLints(root: RootfsView, options: LintOptions = {}, lints: readonly Lint[] = LINTS): Promise<LintReport> {
  const known = new Set(lints.map((l) => l.name));
  for (const name of options.skip ?? []) {
    if (!known.has(name)) {
      throw new UserError(`unknown lint "${name}" in --skip`, { hint: `lints: ${[...known].join(', ')} (see --list)` });
    }
  }
  const skip = new Set(options.skip ?? []);
  const report: LintReport = { lines: [], passed: 0, skipped: 0, warnings: 0, failed: 0 };
  for (const lint of lints) {
    const wrongRoot = (lint.rootType === 'running' && !root.isRunningRoot) || (lint.rootType === 'alternative' && root.isRunningRoot);
    if (skip.has(lint.name) || wrongRoot) {
      report.skipped++;
      continue;
    }
    const outcome = await lint.check(root);
    if (outcome.ok) {
      report.passed++;
      continue;
    }
    const text = renderOutcome(outcome.message, outcome.items, options.noTruncate ?? false);
    if (lint.type === 'fatal' || options.fatalWarnings) {
      report.failed++;
      report.lines.push(`Failed lint: ${lint.name}: ${text}`);
    } else {
      report.warnings++;
      report.lines.push(`Lint warning: ${lint.name}: ${text}`);
    }
  }
  report.lines.push(`Checks passed: ${report.passed}`);
  if (report.skipped > 0) report.lines.push(`Checks skipped: ${report.skipped}`);
  if (report.warnings > 0) report.lines.push(`Warnings: ${report.warnings}`);
  return report;
}

/** The command: print the report, fail with "Checks failed: N" when a fatal lint failed. */
export async function lintRootfs(rootfs: string, options: LintOptions, write: (text: string) => void): Promise<void> {
  const root = new RootfsView(rootfs);
  if (!(await root.isDirectory(''))) {
    throw new UserError(`--rootfs ${rootfs} is not a directory`, { hint: 'pass the root of an unpacked image, or / inside a build' });
  }
  const report = await runLints(root, options);
  write(report.lines.join('\n') + '\n');
  if (report.failed > 0) {
    throw new UserError(`Checks failed: ${report.failed}`, { hint: 'fix the failed lints above, or skip one with --skip NAME' });
  }
}
