/**
 * The qemu harness's console protocol, against a scripted fake guest on a stream: waiting,
 * timeouts with the console tail, the login handshake, and command markers.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  ConsoleClosedError,
  ConsoleTimeoutError,
  SerialConsole,
  commandLine,
  consoleTail,
  normalizeConsoleChunk,
  parseCommandOutput,
} from '../../../qemu-tests/serial-console.js';
import { qemuArgs, type VmOptions } from '../../../qemu-tests/harness.js';

/** A stream whose far end is a function answering what the console types. */
function fakeGuest(answer: (typed: string, say: (text: string) => void) => void): {
  stream: Duplex;
  say: (text: string) => void;
} {
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      answer(chunk.toString(), say);
      done();
    },
  });
  // Terminal output: LF becomes CRLF, and it arrives in odd pieces.
  function say(text: string): void {
    const bytes = text.replace(/\n/g, '\r\n');
    for (let i = 0; i < bytes.length; i += 7) stream.push(bytes.slice(i, i + 7));
  }
  return { stream, say };
}

/** Answers the setup line and commands the way bash would with our markers. */
function fakeShell(commands: Record<string, { out: string; code: number }>) {
  return (typed: string, say: (text: string) => void): void => {
    const ready = /__BOOTC_READY_%s__\\n' (\w+)/.exec(typed);
    if (ready) say(`__BOOTC_READY_${ready[1]}__\n`);
    const cmd = /printf '__BOOTC_BEGIN_%s__\\n' (\w+); \{ ([\s\S]*)\n\} <\/dev\/null;/.exec(typed);
    if (cmd) {
      const [, token, command] = cmd;
      const result = commands[command!] ?? { out: `bash: ${command}: command not found\n`, code: 127 };
      say(`__BOOTC_BEGIN_${token}__\n${result.out}\n__BOOTC_END_${token}_${result.code}__\n`);
    }
  };
}

describe('normalizeConsoleChunk', () => {
  it('drops CRs and the escape sequences systemd and bash print', () => {
    const raw = '[\x1b[0;32m  OK  \x1b[0m] Started x.\r\n\x1b[?2004hroot@fixture:~# \x1b]0;title\x07\x1b(B';
    expect(normalizeConsoleChunk(raw)).toEqual({ text: '[  OK  ] Started x.\nroot@fixture:~# ', rest: '' });
  });

  it('holds back an escape sequence cut off at the end of a chunk', () => {
    expect(normalizeConsoleChunk('done\x1b[0;3')).toEqual({ text: 'done', rest: '\x1b[0;3' });
    expect(normalizeConsoleChunk('\x1b[0;3' + '2mgreen')).toEqual({ text: 'green', rest: '' });
  });
});

describe('parseCommandOutput', () => {
  it('waits for the end marker, then returns the output without the final newline', () => {
    expect(parseCommandOutput('echo junk\n__BOOTC_BEGIN_t1__\n1\n', 't1')).toBeNull();
    expect(parseCommandOutput('junk\n__BOOTC_BEGIN_t1__\n1\n\n__BOOTC_END_t1_0__\n', 't1')).toEqual({
      stdout: '1',
      exitCode: 0,
    });
    expect(parseCommandOutput('__BOOTC_BEGIN_t1__\nno newline\n__BOOTC_END_t1_2__', 't1')).toEqual({
      stdout: 'no newline',
      exitCode: 2,
    });
  });

  it('never finds a marker in the typed command line itself', () => {
    const typed = commandLine('true', 'abc123');
    expect(parseCommandOutput(typed, 'abc123')).toBeNull();
    expect(typed).not.toContain('__BOOTC_BEGIN_abc123__');
  });
});

describe('SerialConsole', () => {
  it('times out with the pattern, the log location and the last 40 console lines', async () => {
    const { stream, say } = fakeGuest(() => {});
    const console = new SerialConsole(stream, { describe: () => 'VM test (log: /tmp/x.log)' });
    say(Array.from({ length: 100 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
    const error = await console.waitFor(/login:/, 50).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConsoleTimeoutError);
    const message = (error as Error).message;
    expect(message).toContain('waiting for /login:/ on VM test (log: /tmp/x.log)');
    expect(message).toContain('line 61\n');
    expect(message).toContain('line 100\n---');
    expect(message).not.toContain('line 60\n');
  });

  it('matches text that arrives later and in pieces, once', async () => {
    const { stream, say } = fakeGuest(() => {});
    const console = new SerialConsole(stream);
    const waiting = console.waitFor(/fixture login: (\w+)/, 1000);
    say('Debian GNU/Linux 12 fixture ttyS0\n\nfixture login: root (automatic login)\n');
    expect((await waiting)[1]).toBe('root');
    // The cursor moved past the match: the same text does not satisfy a second wait.
    await expect(console.waitFor(/fixture login/, 20)).rejects.toThrow(ConsoleTimeoutError);
  });

  it('fails a pending wait at once when the console ends, showing its last output', async () => {
    const { stream, say } = fakeGuest(() => {});
    const console = new SerialConsole(stream, { closeReason: async () => 'qemu exited (code 1)' });
    const waiting = console.waitFor(/never/, 10_000);
    say('Kernel panic - not syncing\n');
    stream.push(null);
    await expect(waiting).rejects.toThrow(ConsoleClosedError);
    await expect(waiting).rejects.toThrow(/qemu exited \(code 1\)[\s\S]*Kernel panic/);
  });

  it('retypes the shell setup until the freshly logged-in shell answers', async () => {
    let setups = 0;
    const shell = fakeShell({});
    const { stream, say } = fakeGuest((typed, sayBack) => {
      // login flushes what was typed before the shell started: ignore the first setup line.
      if (typed.startsWith('stty -echo') && ++setups === 1) return;
      shell(typed, sayBack);
    });
    const console = new SerialConsole(stream, { setupRetryMs: 50 });
    say('fixture login: root (automatic login)\n');
    await console.waitForLogin(5000);
    expect(setups).toBe(2);
  });

  it('runs commands between markers, ignoring console noise around them', async () => {
    const { stream, say } = fakeGuest(
      fakeShell({
        'cat /usr/lib/fixture-release': { out: '1\n', code: 0 },
        false: { out: '', code: 1 },
        "printf 'a\\n\\nb'": { out: 'a\n\nb', code: 0 },
      }),
    );
    const console = new SerialConsole(stream);
    say('[   12.3] random: crng init done\n');
    expect(await console.run('cat /usr/lib/fixture-release', 1000)).toEqual({ stdout: '1', exitCode: 0 });
    expect(await console.run('false', 1000)).toEqual({ stdout: '', exitCode: 1 });
    expect(await console.run("printf 'a\\n\\nb'", 1000)).toEqual({ stdout: 'a\n\nb', exitCode: 0 });
    await expect(console.runOk('nope', 1000)).rejects.toThrow(/exited with 127[\s\S]*command not found/);
  });

  it('refuses a command longer than a tty line holds', async () => {
    const { stream } = fakeGuest(() => {});
    await expect(new SerialConsole(stream).run(`echo ${'x'.repeat(5000)}`, 1000)).rejects.toThrow(
      /a tty line holds/,
    );
  });
});

describe('consoleTail', () => {
  it('keeps the last lines', () => {
    expect(consoleTail('a\nb\nc\n', 2)).toBe('b\nc');
  });
});

describe('qemuArgs', () => {
  const base: VmOptions = {
    name: 'vm',
    boot: { kind: 'kernel', kernel: '/k', initrd: '/i', append: 'root=/dev/vda rw console=ttyS0' },
    disks: [{ path: '/tmp/a,b.qcow2' }],
  };
  const files = { serialSocket: '/tmp/s.sock', varsFile: '/tmp/vars.fd' };

  it('has no network unless a registry port is given, and then only the one forward', () => {
    expect(qemuArgs(base, files)).toContain('-nic');
    const args = qemuArgs({ ...base, registryPort: 5055 }, files);
    expect(args).not.toContain('-nic');
    // A relay per guest connection, and it only ever connects to 127.0.0.1.
    expect(args).toContain('user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:5000-cmd:socat STDIO TCP:127.0.0.1:5055');
  });

  it('boots TCG on q35, disks as virtio with commas escaped and the format from the name', () => {
    const args = qemuArgs(base, files);
    expect(args.join(' ')).toContain('-machine q35 -accel tcg');
    expect(args).toContain('file=/tmp/a,,b.qcow2,format=qcow2,if=virtio,cache=writeback');
    expect(args.slice(args.indexOf('-append'), args.indexOf('-append') + 2)).toEqual([
      '-append',
      'root=/dev/vda rw console=ttyS0',
    ]);
  });

  it('boots OVMF from pflash, with SMM and secure flash for Secure Boot', () => {
    const uefi = qemuArgs({ ...base, boot: { kind: 'uefi' } }, files);
    expect(uefi).toContain('if=pflash,format=raw,unit=1,file=/tmp/vars.fd');
    expect(uefi).not.toContain('-kernel');
    const secure = qemuArgs({ ...base, boot: { kind: 'uefi', secureBoot: true } }, files);
    expect(secure).toContain('q35,smm=on');
    expect(secure).toContain('driver=cfi.pflash01,property=secure,value=on');
  });
});
