/**
 * qemu tier: the interactive installer end to end. The real CLI runs in tmux at 80x25 and
 * is driven with send-keys / capture-pane like a person at a console:
 *
 *   1. `bootc install` picks the loop device this test attached (and only it: the row is
 *      checked before Enter and the confirmation types its name), sets a host name and a
 *      user with a password hash, saves the answers, confirms and installs fixture:v1; the disk boots under OVMF with that
 *      host name
 *   2. a second run stops at the confirmation with Esc: the disk file is byte-for-byte
 *      unchanged (sha256 before and after) and the exit code is 130
 *   3. `bootc install to-disk --config answers.toml` replays the saved answers unattended:
 *      the same partitions and the same boot entry (deployment, kernel arguments)
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsLoopDevices } from '../test/support/tier.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, readFixturesIndex } from '../fixtures/paths.js';
import { deploymentId } from '../src/deploy/paths.js';
import { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm } from './harness.js';
import { suiteDir, DISK_TMP } from '../test/support/temp-tree.js';

const skip = explainSkip(
  'qemu',
  needsLoopDevices() ??
    needsCommands('tmux', 'openssl', QEMU, 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'mtype', 'blkid', 'wipefs', 'fstrim') ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(fixturesIndexPath, fixturesHint),
);

const HOSTNAME = 'tui-installed';
const USER = 'tuiuser';
/** `openssl passwd -6 -salt tuitest secret` (beforeAll): a fixed hash, so the guest's shadow can be compared. */
let userHash = '';
const SESSION = 'tui';
/** A private tmux server: nothing of anyone else's is touched. */
const SOCKET = `bootc-tui-test-${process.pid}`;

const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const screen = (): string => tmux('capture-pane', '-p', '-t', SESSION);
const keys = (...k: string[]): void => {
  tmux('send-keys', '-t', SESSION, ...k);
};
/** Literal text (no key-name lookup: "Enter" typed as a word stays a word). */
const type = (text: string): void => {
  tmux('send-keys', '-t', SESSION, '-l', text);
};

async function waitForScreen(what: string | RegExp, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = screen();
    if (typeof what === 'string' ? s.includes(what) : what.test(s)) return s;
    if (Date.now() > deadline) throw new Error(`the installer never showed ${String(what)}; the screen:\n${s}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs the CLI in a fresh 80x25 tmux session; its exit code is printed after it ends. */
function startInstaller(args: string[]): void {
  endInstaller();
  const command = ['node', '--import', 'tsx', 'src/cli.ts', 'install', ...args].map((a) => `'${a}'`).join(' ');
  tmux('new-session', '-d', '-x', '80', '-y', '25', '-s', SESSION, '-c', process.cwd(), `${command}; echo BOOTC-EXIT=$?; sleep 3600`);
}

function endInstaller(): void {
  try {
    tmux('kill-server');
  } catch {
    // already gone
  }
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const selectedRow = (): string | undefined =>
  screen()
    .split('\n')
    .find((l) => l.startsWith('> /dev/'));

/** On the disk screen: move the highlight (Down, then back Up) to the row `wanted` accepts. */
async function highlightDisk(wanted: (row: string) => boolean): Promise<string> {
  await waitForScreen('2/5 Disk');
  for (const direction of ['Down', 'Up']) {
    for (let i = 0; i < 64; i++) {
      const before = selectedRow();
      if (before && wanted(before)) return before;
      keys(direction);
      // The end of the list is where a key no longer moves the highlight (a loaded machine redraws slowly).
      let moved = false;
      for (let t = 0; t < 20 && !moved; t++) {
        await new Promise((r) => setTimeout(r, 250));
        moved = selectedRow() !== before;
      }
      if (!moved) break;
    }
  }
  throw new Error(`no such disk on the disk screen:\n${screen()}`);
}

/** Choose `device` (checked on the highlighted row, never guessed), then Enter. */
async function chooseDisk(device: string): Promise<void> {
  await highlightDisk((row) => row.split(/\s+/)[1] === device);
  keys('Enter');
}

/** Partition starts and sizes of a disk image, without the random GUIDs. */
function partitions(file: string): Array<{ start: number; size: number; type: string }> {
  const table = JSON.parse(execFileSync('sfdisk', ['--json', file], { encoding: 'utf8' })) as { partitiontable: { partitions: Array<{ start: number; size: number; type: string }> } };
  return table.partitiontable.partitions.map(({ start, size, type }) => ({ start, size, type }));
}

/** The BLS entry of the installed deployment, read from the ESP (partition 1) with mtools. */
function bootEntry(file: string, start: number, id: string): string {
  const image = `${file}@@${start * 512}`;
  const names = execFileSync('mdir', ['-b', '-i', image, '::/loader/entries'], { encoding: 'utf8' }).split('\n').filter((n) => n.includes(id));
  expect(names).toHaveLength(1);
  return execFileSync('mtype', ['-i', image, names[0]!.replace(/^.*?::/, '::')], { encoding: 'utf8' });
}

describe.skipIf(skip)('bootc install (interactive) in tmux at 80x25', () => {
  let tmp = '';
  let disk = '';
  let loop = '';
  let id = '';
  const answers = (): string => join(tmp, 'answers.toml');
  const store = (): string => join(tmp, 'store');

  const scratch = suiteDir('tui-install', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
    disk = join(tmp, 'disk.raw');
    execFileSync('truncate', ['-s', '4G', disk]);
    loop = execFileSync('losetup', ['--find', '--show', '--partscan', disk], { encoding: 'utf8' }).trim();
    id = deploymentId(readFixturesIndex().tags.v1.manifestDigest, 0);
    userHash = execFileSync('openssl', ['passwd', '-6', '-salt', 'tuitest', 'secret'], { encoding: 'utf8' }).trim();
  });
  afterAll(() => {
    endInstaller();
    // tmux leaves its socket file behind.
    rmSync(join(process.env['TMUX_TMPDIR'] ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
    if (loop) execFileSync('losetup', ['--detach', loop]);
  });

  it('picks the loop device, confirms by its name, installs fixture:v1, and the disk boots', async () => {
    startInstaller(['--source-imgref', ociLayoutRef('v1'), '--store', store(), '--log-file', join(tmp, 'install.log')]);
    await waitForScreen('(default)', 30_000);
    keys('Enter');
    await chooseDisk(loop);
    await waitForScreen('3/5 Options');
    keys('Down', 'Down', 'Down');
    type(HOSTNAME);
    keys('Down', 'Down');
    type(USER);
    keys('Down');
    type(userHash);
    keys('Down');
    type(answers());
    keys('Enter');
    const plan = await waitForScreen('4/5 Plan');
    expect(plan).toContain(`ERASE all of ${loop}, 4.0 GiB:`);
    expect(plan).toContain(`  host name: ${HOSTNAME}`);
    expect(plan).toContain(`  user: ${USER} (password hash given)`);
    for (const line of plan.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    keys('Enter');
    await waitForScreen('5/5 Confirm');
    type(loop);
    keys('Enter');
    await waitForScreen(`Installing to ${loop}`, 30_000);
    const done = await waitForScreen(/Installed to \/dev\/loop|The install failed/, 600_000);
    expect(done, done).toContain(`Installed to ${loop}`);
    expect(done).toContain(`Deployment: default/${id}`);
    expect(done).toContain('r reboot now');
    keys('q');
    expect(await waitForScreen('BOOTC-EXIT=', 30_000)).toContain('BOOTC-EXIT=0');
    endInstaller();
    expect(readFileSync(answers(), 'utf8')).toContain(`path = "${loop}"`);
    expect(readFileSync(answers(), 'utf8')).toContain(`user = "${USER}"`);
    expect(readFileSync(join(tmp, 'install.log'), 'utf8')).toContain('Installation complete!');

    const vm = await startVm({ name: 'tui-install', boot: { kind: 'uefi' }, disks: [{ path: disk, format: 'raw' }] });
    try {
      await vm.waitForLogin();
      expect((await vm.runOk('cat /proc/cmdline')).split(/\s+/)).toEqual(expect.arrayContaining([`bootc.deploy=default/${id}`, `systemd.hostname=${HOSTNAME}`]));
      expect(await vm.runOk('hostname')).toBe(HOSTNAME);
      expect(await vm.runOk('cat /usr/lib/fixture-release')).toBe('1');
      expect(await vm.runOk('findmnt -n -o FSROOT /')).toBe(`/bootc/deploy/default/${id}`);
      expect(await vm.runOk(`getent shadow ${USER} | cut -d: -f2`)).toBe(userHash);
      expect(await vm.runOk(`stat -c '%U %a' ~${USER}/`)).toBe(`${USER} 700`);
    } finally {
      await vm.dispose();
    }
  }, 1_200_000);

  it('Esc at the confirmation leaves the disk byte-for-byte unchanged', async () => {
    const before = await sha256(disk);
    startInstaller(['--source-imgref', ociLayoutRef('v1'), '--store', store(), '--log-file', join(tmp, 'cancel.log')]);
    await waitForScreen('(default)', 30_000);
    keys('Enter');
    await waitForScreen('2/5 Disk');
    // The disk holding this machine's root is listed, marked and refused.
    const running = await highlightDisk((row) => row.includes('IN USE'));
    expect(screen()).toMatch(/In use: .*running system's root filesystem|In use: .*is mounted at/);
    keys('Enter');
    expect(await waitForScreen('Cannot install to')).toContain(`Cannot install to ${running.split(/\s+/)[1]}`);
    expect(screen()).toContain('2/5 Disk');
    await chooseDisk(loop);
    await waitForScreen('3/5 Options');
    // A resize redraws the screen, at the smaller size and back at 80x25.
    tmux('resize-window', '-t', SESSION, '-x', '60', '-y', '20');
    await waitForScreen(/Root filesystem.*\n(.|\n)*Up\/Down field/);
    tmux('resize-window', '-t', SESSION, '-x', '80', '-y', '25');
    expect(await waitForScreen('Ctrl-B back')).toContain('3/5 Options');
    keys('Enter');
    await waitForScreen('4/5 Plan');
    keys('Enter');
    const confirm = await waitForScreen('5/5 Confirm');
    expect(confirm).toContain(`ALL DATA ON ${loop}`);
    type('loop');
    keys('Escape');
    const end = await waitForScreen('BOOTC-EXIT=', 30_000);
    expect(end).toContain('BOOTC-EXIT=130');
    expect(end).toContain('nothing was written to any disk');
    endInstaller();
    expect(await sha256(disk)).toBe(before);
  }, 300_000);

  it('the saved answers replay the same install unattended', async () => {
    expect(existsSync(answers())).toBe(true);
    const installed = partitions(disk);
    const entry = bootEntry(disk, installed[0]!.start, id);
    const r = await execa('node', ['--import', 'tsx', 'src/cli.ts', 'install', 'to-disk', '--config', answers(), '--store', store()], { reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stdout).toContain(`to ${loop}`);
    const replayed = partitions(disk);
    expect(replayed).toEqual(installed);
    const replayedEntry = bootEntry(disk, replayed[0]!.start, id);
    const options = (e: string): string => (e.match(/^options (.*)$/m)?.[1] ?? '').replace(/root=UUID=\S+/, 'root=UUID=X');
    expect(options(replayedEntry)).toBe(options(entry));
    expect(options(replayedEntry)).toContain(`systemd.hostname=${HOSTNAME}`);
  }, 600_000);
});
