/**
 * The installer's screens, rendered with ink-testing-library and driven by key presses.
 * The machine behind them is a recording stand-in (no disks are touched in the unit tier);
 * the real one is exercised by qemu-tests/tui-install.test.ts.
 */
import { Box } from 'ink';
import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { InterruptedError, UserError } from '../../../src/core/errors.js';
import type { Progress } from '../../../src/core/progress.js';
import { parseAnswers } from '../../../src/install/answers.js';
import { type DiskCandidate } from '../../../src/disk/inventory.js';
import { Installer } from '../../../src/tui/app.js';
import type { InstallChoices } from '../../../src/tui/choices.js';
import { LogBook, type ImageDefaults, type InstallOutcome, type InstallerServices } from '../../../src/tui/services.js';

const GiB = 1024 ** 3;
const KEY = { up: '\x1b[A', down: '\x1b[B', left: '\x1b[D', right: '\x1b[C', enter: '\r', esc: '\x1b', tab: '\t', ctrlC: '\x03', ctrlB: '\x02', backspace: '\x7f' };

const runningDisk: DiskCandidate = {
  path: '/dev/vda', sizeBytes: 256 * GiB, model: null, serial: null, wwn: null, transport: 'virtio', pttype: 'gpt', fstype: null, mountpoints: [],
  partitions: [{ path: '/dev/vda1', sizeBytes: 255 * GiB, fstype: 'ext4', label: null, mountpoints: ['/'] }],
  refusal: "/dev/vda holds the running system's root filesystem (on /dev/vda1)",
};
const freeDisk: DiskCandidate = {
  path: '/dev/sdb', sizeBytes: 100 * GiB, model: 'WDC WD10EZEX', serial: 'WD-1234', wwn: null, transport: 'sata', pttype: 'gpt', fstype: null, mountpoints: [],
  partitions: [{ path: '/dev/sdb1', sizeBytes: 99 * GiB, fstype: 'ntfs', label: 'DATA', mountpoints: [] }],
  refusal: null,
};

type InstallBehaviour = (choices: InstallChoices, progress: Progress, machine: FakeMachine) => Promise<InstallOutcome>;

class FakeMachine implements InstallerServices {
  logPath = '/var/log/bootc-install-test.log';
  installs: InstallChoices[] = [];
  saved: Array<{ path: string; text: string }> = [];
  reboots = 0;
  stops = 0;
  release: (() => void) | null = null;
  constructor(
    private readonly behaviour: InstallBehaviour = async () => ({ summary: ['Digest: sha256:abc', 'Deployment: default/abc.0'] }),
    readonly defaults: ImageDefaults = { filesystem: 'xfs', configKargs: ['console=ttyS0'], digest: 'sha256:abc' },
  ) {}
  imageSources = async () => [{ reference: 'oci-archive:/run/media/usb/os.tar', origin: 'on /run/media/usb' }];
  readImage = async (source: string) => {
    if (source.includes('missing')) throw new UserError(`no image ${source}`, { hint: 'check the reference' });
    return this.defaults;
  };
  listDisks = async () => [runningDisk, freeDisk];
  checkReadable = async (path: string) => (path === '/root/key.pub' ? null : 'no such file');
  saveAnswers = async (path: string, text: string) => {
    this.saved.push({ path, text });
  };
  install = async (choices: InstallChoices, progress: Progress) => {
    this.installs.push(choices);
    return this.behaviour(choices, progress, this);
  };
  stopInstall = () => {
    this.stops++;
    this.release?.();
  };
  reboot = async () => {
    this.reboots++;
  };
}

interface Session {
  frame: () => string;
  press: (...keys: string[]) => Promise<void>;
  until: (text: string | RegExp) => Promise<string>;
  exits: Array<{ code: number; message?: string }>;
  log: LogBook;
  frames: string[];
}

let unmounts: Array<() => void> = [];
afterEach(() => {
  for (const u of unmounts) u();
  unmounts = [];
});

function start(machine: FakeMachine, opts: { plain?: boolean; defaultSource?: string; defaultTarget?: string } = {}): Session {
  const exits: Session['exits'] = [];
  const log = new LogBook();
  const r = render(
    <Box width={80}>
      <Installer services={machine} log={log} plain={opts.plain ?? true} onExit={(code, message) => exits.push({ code, ...(message ? { message } : {}) })} {...(opts.defaultSource ? { defaultSource: opts.defaultSource } : {})} {...(opts.defaultTarget ? { defaultTarget: opts.defaultTarget } : {})} />
    </Box>,
  );
  unmounts.push(r.unmount);
  const frame = (): string => r.lastFrame() ?? '';
  const settle = () => new Promise((resolve) => setTimeout(resolve, 10));
  return {
    frame,
    exits,
    log,
    frames: r.frames,
    press: async (...keys) => {
      for (const k of keys) {
        r.stdin.write(k);
        await settle();
      }
    },
    until: async (text) => {
      for (let i = 0; i < 200; i++) {
        const f = frame();
        // One more turn after the frame shows: React binds the new key handlers after painting.
        if (typeof text === 'string' ? f.includes(text) : text.test(f)) return settle().then(() => f);
        await settle();
      }
      throw new Error(`the screen never showed ${String(text)}; it shows:\n${frame()}`);
    },
  };
}

/** Image -> disk -> options -> plan -> confirm, choosing the free disk. */
async function toConfirmation(s: Session): Promise<void> {
  await s.until('oci-archive:/run/media/usb/os.tar');
  await s.press(KEY.enter);
  await s.until('2/5 Disk');
  await s.press(KEY.down, KEY.enter);
  await s.until('3/5 Options');
  await s.press(KEY.enter);
  await s.until('4/5 Plan');
  await s.press(KEY.enter);
  await s.until('5/5 Confirm');
}

describe('image screen', () => {
  it('offers the default image first, then images found on media, then typing one', async () => {
    const s = start(new FakeMachine(), { defaultSource: 'quay.io/example/os:latest' });
    const f = await s.until('os.tar');
    expect(f).toContain('> quay.io/example/os:latest  (default)');
    expect(f).toContain('  oci-archive:/run/media/usb/os.tar  (on /run/media/usb)');
    expect(f).toContain('  Type an image reference...');
  });

  it('refuses a malformed reference inline and shows a failed read with its hint', async () => {
    const s = start(new FakeMachine());
    await s.until('os.tar');
    await s.press(KEY.down, KEY.enter);
    await s.until('Image: _');
    await s.press('oci:');
    await s.press(KEY.enter);
    expect(await s.until('error:')).toContain('error: invalid image reference');
    await s.press(KEY.backspace, KEY.backspace, KEY.backspace, KEY.backspace, 'quay.io/missing/os');
    await s.press(KEY.enter);
    const f = await s.until('error: no image');
    expect(f).toContain('hint: check the reference');
    expect(f).toContain('1/5 Image');
  });
});

describe('disk screen', () => {
  it('lists every disk with size, model, serial, transport and contents; the running disk is marked in use', async () => {
    const s = start(new FakeMachine());
    await s.until('os.tar');
    await s.press(KEY.enter);
    const f = await s.until('2/5 Disk');
    expect(f).toMatch(/\/dev\/vda\s+256\.0 GiB\s+-\s+-\s+virtio\s+1 part\.\s+IN USE/);
    expect(f).toMatch(/\/dev\/sdb\s+100\.0 GiB\s+WDC WD10EZEX\s+WD-1234\s+sata\s+1 part\./);
  });

  it('refuses the disk holding the running system, with the reason, and stays', async () => {
    const machine = new FakeMachine();
    const s = start(machine);
    await s.until('os.tar');
    await s.press(KEY.enter);
    await s.until('2/5 Disk');
    // The cursor starts on the first usable disk; go up to the running one.
    await s.press(KEY.up);
    expect(await s.until('In use:')).toContain("In use: /dev/vda holds the running system's root filesystem");
    await s.press(KEY.enter);
    const f = await s.until('Cannot install to /dev/vda');
    expect(f).toContain('2/5 Disk');
    expect(machine.installs).toEqual([]);
  });

  it('shows the partitions of the highlighted disk and goes back with Left', async () => {
    const s = start(new FakeMachine());
    await s.until('os.tar');
    await s.press(KEY.enter);
    expect(await s.until('/dev/sdb1')).toContain('/dev/sdb1  99.0 GiB  ntfs  "DATA"');
    await s.press(KEY.left);
    await s.until('1/5 Image');
  });
});

describe('options screen', () => {
  async function toOptions(machine = new FakeMachine()): Promise<Session> {
    const s = start(machine);
    await s.until('os.tar');
    await s.press(KEY.enter);
    await s.until('2/5 Disk');
    await s.press(KEY.enter);
    await s.until('3/5 Options');
    return s;
  }

  it('starts from the image install config and changes the filesystem with Left/Right', async () => {
    const s = await toOptions();
    expect(s.frame()).toContain('> Root filesystem     [xfs]  ext4   btrfs');
    expect(s.frame()).toContain('Install config kernel arguments (always added): console=ttyS0');
    await s.press(KEY.right);
    expect(await s.until('[ext4]')).toContain('Root filesystem      xfs  [ext4]  btrfs');
    await s.press(KEY.left, KEY.left);
    expect(await s.until('[btrfs]')).toContain('Root filesystem      xfs   ext4  [btrfs]');
  });

  it('refuses a bad root size, host name or key file with a hint, then goes on', async () => {
    const s = await toOptions();
    await s.press(KEY.down, 'lots');
    await s.press(KEY.enter);
    expect(await s.until('error:')).toContain('invalid --root-size "lots"');
    await s.press(KEY.backspace, KEY.backspace, KEY.backspace, KEY.backspace, '20G', KEY.down, KEY.down, '-x', KEY.enter);
    expect(await s.until('host name')).toContain('"-x" is not a valid host name');
    await s.press(KEY.backspace, KEY.backspace, 'box1', KEY.down, '/root/nokey', KEY.enter);
    expect(await s.until('no such file')).toContain('root SSH keys file /root/nokey: no such file');
    for (let i = 0; i < '/root/nokey'.length; i++) await s.press(KEY.backspace);
    await s.press('/root/key.pub', KEY.down, 'Admin', KEY.enter);
    expect(await s.until('error:')).toContain('"Admin" is not a valid user name');
    await s.press(KEY.backspace, KEY.backspace, KEY.backspace, KEY.backspace, KEY.backspace, 'admin', KEY.down, 'secret', KEY.enter);
    expect(await s.until('crypt(3)')).toContain('the password must be given as a crypt(3) hash');
    for (let i = 0; i < 'secret'.length; i++) await s.press(KEY.backspace);
    await s.press('$y$j9T$salt$hash', KEY.enter);
    const plan = await s.until('4/5 Plan');
    expect(plan).toContain('  2  20.0 GiB  root, xfs');
    expect(plan).toContain('  host name: box1');
    expect(plan).toContain('  root SSH keys from /root/key.pub');
    expect(plan).toContain('  user: admin (password hash given)');
  });
});

describe('plan and confirmation', () => {
  it('an installer medium: the default image installs following its target; another image follows itself', async () => {
    const medium = 'oci:/run/bootc/medium/bootc/image';
    const target = 'quay.io/example/os:stable';
    const machine = new FakeMachine();
    const s = start(machine, { defaultSource: medium, defaultTarget: target });
    await s.until('(default)');
    await s.press(KEY.enter);
    await s.until('2/5 Disk');
    await s.press(KEY.down, KEY.enter);
    await s.until('3/5 Options');
    await s.press(KEY.enter);
    expect(await s.until('4/5 Plan')).toContain(`updates from: ${target}`);
    const other = start(new FakeMachine(), { defaultSource: medium, defaultTarget: target });
    await other.until('os.tar');
    await other.press(KEY.down, KEY.enter);
    await other.until('2/5 Disk');
    await other.press(KEY.down, KEY.enter);
    await other.until('3/5 Options');
    await other.press(KEY.enter);
    expect(await other.until('4/5 Plan')).not.toContain('updates from:');
  });

  it('shows exactly what is erased and created', async () => {
    const s = start(new FakeMachine());
    await s.until('os.tar');
    await s.press(KEY.enter);
    await s.until('2/5 Disk');
    await s.press(KEY.enter);
    await s.until('3/5 Options');
    await s.press(KEY.enter);
    const f = await s.until('4/5 Plan');
    expect(f).toContain('ERASE all of /dev/sdb, 100.0 GiB, WDC WD10EZEX, serial WD-1234, sata:');
    expect(f).toContain('  /dev/sdb1  99.0 GiB  ntfs  "DATA"');
    expect(f).toContain('CREATE a GPT partition table on /dev/sdb:');
    expect(f).toContain('INSTALL oci-archive:/run/media/usb/os.tar');
  });

  it('has no default: Enter alone, "y" or another device write nothing', async () => {
    const machine = new FakeMachine();
    const s = start(machine);
    await toConfirmation(s);
    expect(s.frame()).toContain('ALL DATA ON /dev/sdb, 100.0 GiB');
    await s.press(KEY.enter);
    expect(await s.until('Nothing typed')).toContain('Nothing typed: nothing will be written.');
    await s.press('y', KEY.enter);
    await s.until('"y" is not /dev/sdb');
    await s.press('/dev/sda', KEY.enter);
    await s.until('"/dev/sda" is not /dev/sdb');
    expect(machine.installs).toEqual([]);
    expect(s.frame()).toContain('5/5 Confirm');
  });

  it('Esc at the confirmation quits with nothing written', async () => {
    const machine = new FakeMachine();
    const s = start(machine);
    await toConfirmation(s);
    await s.press('sd', KEY.esc);
    expect(s.exits).toEqual([{ code: 130, message: 'Cancelled: nothing was written to any disk.' }]);
    expect(machine.installs).toEqual([]);
  });

  it('Ctrl-C on the first screen quits at once', async () => {
    const s = start(new FakeMachine());
    await s.until('os.tar');
    await s.press(KEY.ctrlC);
    expect(s.exits).toEqual([{ code: 130, message: 'Cancelled: nothing was written to any disk.' }]);
  });

  it('Ctrl-B goes back from the confirmation to the plan', async () => {
    const s = start(new FakeMachine());
    await toConfirmation(s);
    await s.press(KEY.ctrlB);
    await s.until('4/5 Plan');
  });
});

describe('install', () => {
  it('typing the device name installs with the choices, shows steps, bytes and ETA, then offers reboot', async () => {
    let clock = 0;
    const machine = new FakeMachine(async (_c, progress, m) => {
      const steps = (done: number) =>
        progress.emit({
          type: 'ProgressSteps', task: 'install', description: 'Installing to disk', id: 'i', stepsCached: 0, steps: done, stepsTotal: 3,
          subtasks: ['Checking the disk', 'Pulling image', 'Finalising'].map((d, i) => ({ subtask: d, description: d, id: String(i), completed: i < done })),
        });
      const bytes = (n: number) =>
        progress.emit({ type: 'ProgressBytes', task: 'pulling', description: 'Pulling Image: sha256:abc', id: 'd', bytesCached: 0, bytes: n, bytesTotal: 100 * 1024 * 1024, stepsCached: 0, steps: 0, stepsTotal: 1, subtasks: [] });
      steps(1);
      bytes(0);
      clock = 2000;
      bytes(20 * 1024 * 1024);
      await new Promise<void>((resolve) => (m.release = resolve));
      steps(3);
      return { summary: ['Digest: sha256:abc', 'Deployment: default/abc.0'] };
    });
    const exits: unknown[] = [];
    const log = new LogBook();
    const r = render(<Installer services={machine} log={log} plain onExit={(code) => exits.push(code)} now={() => clock} />);
    unmounts.push(r.unmount);
    const s: Session = {
      frame: () => r.lastFrame() ?? '',
      exits: [],
      log,
      frames: r.frames,
      press: async (...keys) => {
        for (const k of keys) {
          r.stdin.write(k);
          await new Promise((res) => setTimeout(res, 20));
        }
      },
      until: async (text) => {
        for (let i = 0; i < 200; i++) {
          if ((r.lastFrame() ?? '').includes(text as string)) return new Promise((res) => setTimeout(() => res(r.lastFrame()!), 20));
          await new Promise((res) => setTimeout(res, 20));
        }
        throw new Error(`never showed ${String(text)}:\n${r.lastFrame()}`);
      },
    };
    await toConfirmation(s);
    await s.press('sdb', KEY.enter);
    const f = await s.until('ETA');
    expect(f).toContain('Installing to /dev/sdb');
    expect(f).toContain('[x] Checking the disk');
    expect(f).toContain('[>] Pulling image');
    expect(f).toContain('[ ] Finalising');
    expect(f).toContain('Pulling Image: 20.0 MiB / 100.0 MiB, 10.0 MiB/s, ETA 8s');
    expect(machine.installs).toHaveLength(1);
    expect(machine.installs[0]).toMatchObject({ source: 'oci-archive:/run/media/usb/os.tar', filesystem: 'xfs', kargs: [] });
    expect(machine.installs[0]!.disk.path).toBe('/dev/sdb');
    machine.release!();
    const done = await s.until('Installed to /dev/sdb');
    expect(done).toContain('Deployment: default/abc.0');
    expect(done).toContain('r reboot now');
    await s.press('r');
    await new Promise((res) => setTimeout(res, 50));
    expect(machine.reboots).toBe(1);
    expect(exits).toEqual([0]);
  });

  it('saves the answers before writing, and they parse back to the same choices', async () => {
    const machine = new FakeMachine();
    const s = start(machine);
    await s.until('os.tar');
    await s.press(KEY.enter);
    await s.until('2/5 Disk');
    await s.press(KEY.enter);
    await s.until('3/5 Options');
    await s.press(KEY.down, KEY.down, 'quiet', KEY.down, 'box1', KEY.down, KEY.down, 'admin', KEY.down, '$6$salt$hash', KEY.down, '/root/answers.toml', KEY.enter);
    expect(await s.until('4/5 Plan')).toContain('  user: admin (password hash given)');
    await s.press(KEY.enter);
    await s.until('5/5 Confirm');
    await s.press('yes', KEY.enter);
    const f = await s.until('Installed to /dev/sdb');
    expect(f).toContain('Answers saved to /root/answers.toml');
    expect(machine.saved).toHaveLength(1);
    expect(machine.saved[0]!.path).toBe('/root/answers.toml');
    expect(parseAnswers('a', machine.saved[0]!.text)).toEqual({
      source: 'oci-archive:/run/media/usb/os.tar',
      disk: { by: 'serial', serial: 'WD-1234' },
      wipe: true,
      filesystem: 'xfs',
      kargs: ['quiet'],
      hostname: 'box1',
      user: { name: 'admin', passwordHash: '$6$salt$hash', groups: [] },
    });
    expect(machine.installs[0]!.user).toEqual({ name: 'admin', passwordHash: '$6$salt$hash', groups: [] });
  });

  it('once writing started, Esc/Ctrl-C ask first; n goes on, y stops and the failure screen names the log', async () => {
    const machine = new FakeMachine(
      (_c, _p, m) =>
        new Promise((_resolve, reject) => {
          m.release = () => reject(new InterruptedError('SIGINT'));
        }),
    );
    const s = start(machine);
    await toConfirmation(s);
    await s.press('/dev/sdb', KEY.enter);
    await s.until('Installing to /dev/sdb');
    await s.press(KEY.ctrlC);
    expect(await s.until('Stop the install?')).toContain('Press y to stop, n to go on.');
    await s.press('n');
    expect(s.frame()).not.toContain('Stop the install?');
    expect(machine.stops).toBe(0);
    await s.press(KEY.esc);
    await s.until('Stop the install?');
    await s.press('y');
    const f = await s.until('The install failed');
    expect(machine.stops).toBe(1);
    expect(f).toContain('error: Interrupted by SIGINT');
    expect(f).toContain('Full log: /var/log/bootc-install-test.log');
    expect(s.exits).toEqual([]);
    await s.press('q');
    expect(s.exits).toEqual([{ code: 1, message: 'The install failed; the full log is in /var/log/bootc-install-test.log' }]);
  });

  it('a failure shows the error with its hint', async () => {
    const machine = new FakeMachine(async () => {
      throw new UserError('the new root filesystem is full', { hint: 'use a bigger disk or a bigger --root-size' });
    });
    const s = start(machine);
    await toConfirmation(s);
    await s.press('yes', KEY.enter);
    const f = await s.until('The install failed');
    expect(f).toContain('error: the new root filesystem is full');
    expect(f).toContain('hint: use a bigger disk or a bigger --root-size');
    expect(s.log.tail(5).join('\n')).toContain('error: the new root filesystem is full');
  });
});

describe('log pane, plain mode and size', () => {
  it('Tab shows and hides the log pane', async () => {
    const s = start(new FakeMachine());
    await s.until('os.tar');
    s.log.write('pulled layer 1\n');
    await s.press(KEY.tab);
    expect(await s.until('Log (')).toContain('pulled layer 1');
    await s.press(KEY.tab);
    expect(s.frame()).not.toContain('Log (');
  });

  it('plain mode writes no escape sequences and only ASCII (serial consoles)', async () => {
    const plain = start(new FakeMachine(), { plain: true });
    await toConfirmation(plain);
    await plain.press(KEY.tab);
    await plain.until('Log (');
    expect(plain.frames.join('')).not.toMatch(/\x1b\[/);
    expect(plain.frames.join('')).toMatch(/^[\x00-\x7f]*$/);
  });

  it('every screen fits 80x25', async () => {
    const s = start(new FakeMachine());
    await toConfirmation(s);
    await s.press(KEY.tab);
    for (const frame of s.frames) {
      const lines = frame.split('\n');
      expect(lines.length).toBeLessThanOrEqual(25);
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    }
  });
});

describe('keys in a burst (one read, no render in between)', () => {
  it('each key sees what the previous one did: field moves, text, Enter', async () => {
    const machine = new FakeMachine();
    const s = start(machine);
    await s.until('os.tar');
    await s.press(KEY.enter);
    await s.until('2/5 Disk');
    // Up to the refused disk and Enter in one chunk: refused, not the disk highlighted before.
    await s.press(KEY.up + KEY.enter);
    await s.until('Cannot install to /dev/vda');
    await s.press(KEY.down + KEY.enter);
    await s.until('3/5 Options');
    await s.press(KEY.down + 'lots' + KEY.enter);
    expect(await s.until('error:')).toContain('invalid --root-size "lots"');
    await s.press(KEY.backspace.repeat(4) + '20G' + KEY.down + KEY.down + 'box1' + KEY.enter);
    const plan = await s.until('4/5 Plan');
    expect(plan).toContain('  2  20.0 GiB  root, xfs');
    expect(plan).toContain('  host name: box1');
    await s.press(KEY.enter);
    await s.until('5/5 Confirm');
    await s.press('sdb' + KEY.enter);
    await s.until('Installed to /dev/sdb');
    expect(machine.installs[0]).toMatchObject({ rootSize: '20G', hostname: 'box1' });
  });
});
