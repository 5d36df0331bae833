/**
 * Boots a VM under qemu for the qemu test tier and drives it over its serial console.
 *
 *   const vm = await startVm({ name: 'boot', boot: { kind: 'uefi' }, disks: [{ path }] });
 *   try {
 *     await vm.waitForLogin();
 *     const { stdout, exitCode } = await vm.run('cat /usr/lib/fixture-release');
 *   } finally {
 *     await vm.dispose();
 *   }
 *
 * - TCG only (this machine's KVM is unusable): expect ~45 s from power-on to login.
 * - Firmware: OVMF from pflash with a private copy of the variable store per VM, or direct
 *   `-kernel/-initrd/-append`. Disks are virtio (vda, vdb, ... in order).
 * - Network: none, or qemu's user network restricted to one forward, guest
 *   10.0.2.100:5000 -> host 127.0.0.1:<port>, for a registry the test runs.
 * - The serial console is a unix socket (readable and writable); every byte is appended to
 *   a log file whose path is `vm.logPath`, kept after the VM is gone.
 * - A VM never outlives the test process: qemu gets the parent-death signal SIGKILL, and
 *   process exit or SIGINT/SIGTERM kills every VM still running and removes its temp files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandLine } from '../src/core/shell-quote.js';
import { SerialConsole, type RunResult } from './serial-console.js';
import { tempDir, TempDir } from '../test/support/temp-tree.js';

export { ConsoleClosedError, ConsoleTimeoutError, type RunResult } from './serial-console.js';

export const QEMU = 'qemu-system-x86_64';
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS_TEMPLATE = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** Debian's test-signed firmware pair (enrolled snakeoil keys) for Secure Boot tests. */
export const OVMF_CODE_SECBOOT = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
export const OVMF_VARS_SNAKEOIL = '/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd';
/** Where the guest reaches the host's registry when `registryPort` is set. */
export const GUEST_REGISTRY_HOST = '10.0.2.100';
export const GUEST_REGISTRY_PORT = 5000;

const DEFAULT_LOGIN_TIMEOUT_MS = 240_000;
const DEFAULT_RUN_TIMEOUT_MS = 60_000;
const DEFAULT_POWEROFF_TIMEOUT_MS = 60_000;
const SOCKET_APPEAR_TIMEOUT_MS = 10_000;
const STDERR_KEEP_BYTES = 8192;

export interface Disk {
  path: string;
  /** Default: qcow2 for *.qcow2, else raw. */
  format?: 'raw' | 'qcow2';
  readOnly?: boolean;
  /** Shows up as /dev/disk/by-id/virtio-<serial>. */
  serial?: string;
  /** qemu's cache mode; default writeback, which honours the guest's flushes. */
  cache?: 'writeback' | 'unsafe' | 'none' | 'writethrough' | 'directsync';
}

export type Boot =
  | {
      kind: 'uefi';
      /** Firmware code; default OVMF_CODE. */
      code?: string;
      /** Variable store copied per VM; default OVMF_VARS_TEMPLATE. */
      varsTemplate?: string;
      /** Use this variable store in place (kept across VMs) instead of a copy. */
      varsFile?: string;
      /** SMM and secure pflash, which the secboot firmware needs or it never starts. */
      secureBoot?: boolean;
    }
  /** qemu's default firmware, SeaBIOS: legacy BIOS boot from the first disk's MBR. */
  | { kind: 'bios' }
  | { kind: 'kernel'; kernel: string; initrd?: string; append: string };

export interface VmOptions {
  /** Names the VM in errors and its log file. */
  name: string;
  boot: Boot;
  disks: Disk[];
  memoryMiB?: number;
  cpus?: number;
  /** Host port on 127.0.0.1 the guest reaches as 10.0.2.100:5000; no network without it. */
  registryPort?: number;
  /** Default: test-results/qemu/<name>-<time>.log in the repo, or $BOOTC_QEMU_LOG_DIR. */
  logPath?: string;
  /** Every raw console chunk, e.g. to stream the console to stdout. */
  onConsole?: (raw: string) => void;
  extraArgs?: string[];
}

// --- pure: the command line ------------------------------------------------------------

/** qemu's option syntax: a comma inside a value is written twice. */
const optionValue = (value: string): string => value.replace(/,/g, ',,');

const diskFormat = (disk: Disk): string => disk.format ?? (disk.path.endsWith('.qcow2') ? 'qcow2' : 'raw');

export function qemuArgs(options: VmOptions, files: { serialSocket: string; varsFile?: string }): string[] {
  const { boot } = options;
  const secureBoot = boot.kind === 'uefi' && boot.secureBoot === true;
  const args = [
    '-name', optionValue(options.name),
    '-nodefaults', '-no-user-config',
    '-machine', secureBoot ? 'q35,smm=on' : 'q35',
    '-accel', 'tcg',
    // node in the guest wants more than qemu64's baseline; TCG emulates these.
    '-cpu', 'max',
    '-m', String(options.memoryMiB ?? 2048),
    '-smp', String(options.cpus ?? 2),
    '-display', 'none',
    '-monitor', 'none',
    // wait=on: the guest starts only once the harness is connected, so no output is lost.
    '-chardev', `socket,id=serial0,path=${optionValue(files.serialSocket)},server=on,wait=on`,
    '-serial', 'chardev:serial0',
    // Entropy for early boot (systemd's random seed) without waiting on TCG jitter.
    '-device', 'virtio-rng-pci',
  ];
  if (boot.kind === 'uefi') {
    if (!files.varsFile) throw new Error('bug: UEFI boot without a variable store file');
    if (secureBoot) args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
    args.push(
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${optionValue(boot.code ?? OVMF_CODE)}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${optionValue(files.varsFile)}`,
    );
  } else if (boot.kind === 'kernel') {
    args.push('-kernel', boot.kernel);
    if (boot.initrd) args.push('-initrd', boot.initrd);
    args.push('-append', boot.append);
  }
  for (const disk of options.disks) {
    const opts = [
      `file=${optionValue(disk.path)}`,
      `format=${diskFormat(disk)}`,
      'if=virtio',
      `cache=${disk.cache ?? 'writeback'}`,
    ];
    if (disk.readOnly) opts.push('readonly=on');
    if (disk.serial) opts.push(`serial=${optionValue(disk.serial)}`);
    args.push('-drive', opts.join(','));
  }
  if (options.registryPort !== undefined) {
    args.push(
      '-netdev',
      // `-tcp:` would be one chardev connection opened at start-up and shared by every
      // guest connection; `-cmd:` forks a relay per connection, still only to 127.0.0.1.
      `user,id=n0,restrict=on,guestfwd=tcp:${GUEST_REGISTRY_HOST}:${GUEST_REGISTRY_PORT}-cmd:socat STDIO TCP:127.0.0.1:${options.registryPort}`,
      '-device', 'virtio-net-pci,netdev=n0',
    );
  } else {
    args.push('-nic', 'none');
  }
  args.push(...(options.extraArgs ?? []));
  return args;
}

// --- cleanup guard -----------------------------------------------------------------------

/** VMs not yet disposed; killed synchronously if the process goes away first. */
const live = new Set<Vm>();
let guardInstalled = false;

function killAllSync(): void {
  for (const vm of live) vm.killSync();
}

function installGuard(): void {
  if (guardInstalled) return;
  guardInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      killAllSync();
      // Only we listened: do what the signal would have done without us.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, handler);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, handler);
  }
}

// --- the VM --------------------------------------------------------------------------------

function defaultLogPath(name: string): string {
  const dir =
    process.env['BOOTC_QEMU_LOG_DIR'] ??
    join(dirname(fileURLToPath(import.meta.url)), '..', 'test-results', 'qemu');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return join(dir, `${name.replace(/[^\w.-]/g, '_')}-${stamp}.log`);
}

export async function startVm(options: VmOptions): Promise<Vm> {
  installGuard();
  const tmp = tempDir('qemu');
  const serialSocket = join(tmp.path, 'serial.sock');
  let varsFile: string | undefined;
  if (options.boot.kind === 'uefi') {
    varsFile = options.boot.varsFile ?? join(tmp.path, 'OVMF_VARS.fd');
    if (!options.boot.varsFile) copyFileSync(options.boot.varsTemplate ?? OVMF_VARS_TEMPLATE, varsFile);
  }
  const logPath = options.logPath ?? defaultLogPath(options.name);
  mkdirSync(dirname(logPath), { recursive: true });
  const argv = [QEMU, ...qemuArgs(options, { serialSocket, varsFile })];
  const log = createWriteStream(logPath, { flags: 'a' });
  log.write(`# ${new Date().toISOString()} ${commandLine(argv)}\n`);

  // A long-lived interactive process, so spawned here rather than through src/core/exec.
  // setpriv makes the kernel SIGKILL qemu when this process dies, even by SIGKILL.
  const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', ...argv], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const vm = new Vm(options.name, child, tmp, logPath, log, commandLine(argv));
  live.add(vm);
  try {
    await vm.connect(serialSocket, options.onConsole);
  } catch (err) {
    await vm.dispose();
    throw err;
  }
  return vm;
}

export class Vm {
  /** Resolves when qemu has exited: its exit code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitStatus: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private stderr = '';
  private socket: Socket | null = null;
  private serial: SerialConsole | null = null;
  private disposed = false;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    private readonly tmp: TempDir,
    /** The whole serial console of this VM, raw. */
    readonly logPath: string,
    private readonly log: WriteStream,
    /** The qemu command line, pasteable. */
    readonly commandLine: string,
  ) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_KEEP_BYTES);
      this.log.write(chunk.replace(/^(?=.)/gm, '# qemu stderr: '));
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
      child.on('error', (err) => {
        this.stderr += `\nfailed to start qemu: ${err.message}`;
        this.exitStatus = { code: null, signal: null };
        resolve(this.exitStatus);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The console, for what the wrappers below do not cover (mark, text, waitFor options). */
  get console(): SerialConsole {
    if (!this.serial) throw new Error(`VM ${this.name}: console not connected`);
    return this.serial;
  }

  /** @internal Connects to qemu's serial socket once qemu has created it. */
  async connect(path: string, onConsole?: (raw: string) => void): Promise<void> {
    const deadline = Date.now() + SOCKET_APPEAR_TIMEOUT_MS;
    while (!existsSync(path)) {
      if (this.exitStatus) throw new Error(`qemu did not start: ${this.describeExit()}`);
      if (Date.now() > deadline) throw new Error(`qemu did not create its serial socket ${path} in time`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    this.socket = socket;
    this.serial = new SerialConsole(socket, {
      onData: (raw) => {
        this.log.write(raw);
        onConsole?.(raw);
      },
      describe: () => `the console of VM ${this.name} (log: ${this.logPath})`,
      extraErrorContext: () => (this.exitStatus ? `qemu: ${this.describeExit()}` : ''),
      // The socket closes as qemu dies; its exit status follows a moment later.
      closeReason: async () => {
        const stopped = await Promise.race([
          this.exited.then(() => true),
          new Promise<false>((r) => setTimeout(() => r(false), 2000).unref()),
        ]);
        return stopped ? 'qemu exited' : 'the serial console closed while qemu still runs';
      },
    });
  }

  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    return this.console.waitFor(pattern, timeoutMs);
  }

  /** Waits for the autologin root shell (after power-on or a reboot) and prepares it. */
  waitForLogin(timeoutMs = DEFAULT_LOGIN_TIMEOUT_MS): Promise<void> {
    return this.console.waitForLogin(timeoutMs);
  }

  /** Runs a shell command as root in the guest: its terminal output and exit code. */
  run(command: string, timeoutMs = DEFAULT_RUN_TIMEOUT_MS): Promise<RunResult> {
    return this.console.run(command, timeoutMs);
  }

  /** Runs a command that must succeed; returns its output. */
  runOk(command: string, timeoutMs = DEFAULT_RUN_TIMEOUT_MS): Promise<string> {
    return this.console.runOk(command, timeoutMs);
  }

  /** Reboots the guest from its shell and waits for the next login. */
  async reboot(timeoutMs = DEFAULT_LOGIN_TIMEOUT_MS): Promise<void> {
    this.console.write('systemctl reboot\n');
    await this.waitForLogin(timeoutMs);
  }

  /** Powers the guest off from its shell; kills it if it has not stopped in time. */
  async poweroff(timeoutMs = DEFAULT_POWEROFF_TIMEOUT_MS): Promise<void> {
    this.console.write('systemctl poweroff\n');
    const stopped = await Promise.race([
      this.exited.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), timeoutMs).unref()),
    ]);
    if (!stopped) {
      await this.kill();
      throw new Error(`VM ${this.name} did not power off within ${timeoutMs / 1000} s; killed it (log: ${this.logPath})`);
    }
  }

  /** Pulls the plug: SIGKILL, then waits until qemu is gone. */
  async kill(): Promise<void> {
    this.killSync();
    await this.exited;
  }

  /** @internal For the exit guard: signal only, nothing asynchronous. */
  killSync(): void {
    if (!this.exitStatus && this.child.pid !== undefined) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    if (!this.disposed) this.tmp.remove();
  }

  /** Kills the VM if it still runs and removes its temp files; the log stays. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.kill();
    this.disposed = true;
    live.delete(this);
    this.socket?.destroy();
    this.tmp.remove();
    await new Promise<void>((resolve) => this.log.end(resolve));
  }

  private describeExit(): string {
    const status = this.exitStatus;
    const how = !status ? 'running' : status.signal ? `killed by ${status.signal}` : `exit code ${status.code}`;
    const stderr = this.stderr.trim();
    return `${how}${stderr ? `; stderr:\n${stderr}` : ''}\ncommand: ${this.commandLine}`;
  }
}
