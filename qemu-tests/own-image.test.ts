/**
 * qemu tier: the README's "Your own image" walkthrough, run as printed. An image built from
 * a Containerfile on the reference base (Debian + kernel + the tool layer added with
 * `COPY --from=localhost/bootc-ts:latest / /`; no Node.js, no attr) becomes a qcow2 with
 * `bootc image build-disk` (the single executable, dist/bootc), boots, upgrades from a
 * registry on the host to v2 (a local /etc change kept, the image's new /etc default
 * arrived), reboots into v2 and rolls back to v1.
 *
 * The build machine's blocks run in one bash session (their variables and `cd` carry over)
 * from an empty directory; the installed machine's blocks are typed on the VM's serial
 * console, one line at a time, `reboot` through the harness. The README's qemu command is
 * not run: the harness boots the same disk with the same restricted network.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsImage, needsRoot } from '../test/support/tier.js';
import { needsRegistryTools, startRegistry, type TestRegistry } from '../test/support/registry.js';
import { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm, type Vm } from './harness.js';
import { suiteDir, DISK_TMP } from '../test/support/temp-tree.js';

const repo = process.cwd();
const BASE_IMAGE = 'localhost/debian-bootc:12';
const TOOL_IMAGE = 'localhost/bootc-ts:latest';
const GUEST_PREFIX = '# on the installed machine';
/** Pull, import and stage of v2 under TCG. */
const UPGRADE_TIMEOUT_MS = 600_000;
/**
 * A reboot: the finalising shutdown, then a boot of a 450 MB image under TCG. Seen here: a
 * boot that took over 240 s (the harness default) on a loaded 2-core host, with the guest
 * kernel reporting soft lockups from CPU starvation.
 */
const REBOOT_TIMEOUT_MS = 480_000;

interface Walkthrough {
  /** The "once, in this checkout" block: covered by the make targets `make test` depends on. */
  setup: string;
  /** Blocks in README order, each for the build machine (bash) or the installed one (console). */
  blocks: Array<{ where: 'host' | 'guest' | 'qemu'; text: string }>;
}

/** The ```sh blocks of the README section "Your own image". */
export function readWalkthrough(readme: string): Walkthrough {
  const start = readme.indexOf('\n## Your own image\n');
  if (start < 0) throw new Error('README.md has no section "## Your own image"');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const texts = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const [setup, ...rest] = texts;
  if (setup === undefined || !setup.includes('make tool-image')) throw new Error('the first block should build the tool and base images');
  return {
    setup,
    blocks: rest.map((text) => ({
      where: text.startsWith(GUEST_PREFIX) ? 'guest' : text.includes('qemu-system-x86_64') ? 'qemu' : 'host',
      text,
    })),
  };
}

/** The commands of a guest block: one per line, comments and blank lines left out. */
function guestCommands(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** One bash that runs blocks in turn and stops at the first failing command (set -e). */
class HostShell {
  private readonly bash: ChildProcessWithoutNullStreams;
  private output = '';
  private exited: string | null = null;
  private waiting: (() => void) | null = null;

  constructor(cwd: string, env: NodeJS.ProcessEnv) {
    this.bash = spawn('bash', ['--norc', '--noprofile', '-e', '-o', 'pipefail'], { cwd, env });
    const take = (chunk: Buffer): void => {
      this.output += chunk.toString('utf8');
      this.waiting?.();
    };
    this.bash.stdout.on('data', take);
    this.bash.stderr.on('data', take);
    this.bash.on('exit', (code, signal) => {
      this.exited = `bash exited (${code ?? signal})`;
      this.waiting?.();
    });
  }

  /** Runs one README block; resolves with what it printed, rejects with it when a command failed. */
  async run(block: string): Promise<string> {
    const marker = `__block_done_${Math.random().toString(36).slice(2)}__`;
    const from = this.output.length;
    this.bash.stdin.write(`${block}\necho ${marker}\n`);
    for (;;) {
      const at = this.output.indexOf(marker, from);
      if (at >= 0) return this.output.slice(from, at);
      if (this.exited) throw new Error(`a README block failed (${this.exited}):\n${block}\n--- output ---\n${this.output.slice(from)}`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = null;
    }
  }

  close(): void {
    if (!this.exited) this.bash.kill();
  }
}

const skip = explainSkip(
  'qemu',
  needsRoot() ??
    needsCommands(QEMU, 'podman', 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'qemu-img', 'socat') ??
    needsRegistryTools() ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(join(repo, 'dist/bootc'), 'run `make dist`') ??
    needsImage(TOOL_IMAGE, 'tool-image') ??
    needsImage(BASE_IMAGE, 'base-image'),
);

describe.skipIf(skip)('README "Your own image": an image of ours from a Containerfile boots, upgrades and rolls back', () => {
  const walkthrough = readWalkthrough(readFileSync(join(repo, 'README.md'), 'utf8'));
  const hostBlocks = walkthrough.blocks.filter((b) => b.where === 'host');
  const guestBlocks = walkthrough.blocks.filter((b) => b.where === 'guest');
  let tmp = '';
  let registry: TestRegistry | undefined;
  let host: HostShell | undefined;
  let vm: Vm | undefined;
  const seen = new Map<string, string>();

  const scratch = suiteDir('own-image', { under: DISK_TMP });
  beforeAll(async () => {
    tmp = scratch.path;
    registry = await startRegistry();
    // `bootc` on PATH is the single executable, as the README's setup block installs it.
    const bin = join(tmp, 'bin');
    mkdirSync(bin);
    symlinkSync(join(repo, 'dist/bootc'), join(bin, 'bootc'));
    const work = join(tmp, 'empty');
    mkdirSync(work);
    host = new HostShell(work, { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: process.env.HOME ?? '/root', REGISTRY: registry.host, NO_COLOR: '1' });
  }, 120_000);

  afterAll(async () => {
    await vm?.dispose();
    host?.close();
    await registry?.stop();
    for (const tag of ['v1', 'v2']) {
      try {
        execFileSync('podman', ['untag', `localhost/my-os:${tag}`, `localhost/my-os:${tag}`], { stdio: 'pipe' });
      } catch {
        // never built: nothing to untag
      }
    }
  });

  const guest = (): Vm => {
    if (!vm) throw new Error('the VM did not start');
    return vm;
  };

  /** Types each command of a guest block; `reboot` waits for the next login. */
  async function runGuestBlock(text: string): Promise<void> {
    for (const command of guestCommands(text)) {
      if (command === 'reboot') await guest().reboot(REBOOT_TIMEOUT_MS);
      else seen.set(command, await guest().runOk(command, UPGRADE_TIMEOUT_MS));
    }
  }

  it('has the blocks the walkthrough needs, in order', () => {
    expect(walkthrough.blocks.map((b) => b.where)).toEqual(['host', 'qemu', 'guest', 'host', 'guest']);
    expect(walkthrough.setup).toMatch(/make base-image/);
    expect(hostBlocks[0]!.text).toMatch(/FROM localhost\/debian-bootc:12/);
    expect(hostBlocks[0]!.text).toMatch(/bootc image build-disk/);
  });

  it('builds v1 from an empty directory, pushes it and makes a qcow2 with build-disk', { timeout: 900_000 }, async () => {
    await host!.run(hostBlocks[0]!.text);
    const containerfile = readFileSync(join(tmp, 'empty/my-os/Containerfile'), 'utf8');
    expect(containerfile).toMatch(/^FROM localhost\/debian-bootc:12$/m);
  });

  it('boots the disk, with no Node.js and no attr in the image', { timeout: 600_000 }, async () => {
    vm = await startVm({
      name: 'own-image',
      boot: { kind: 'uefi' },
      disks: [{ path: join(tmp, 'empty/my-os/qcow2/disk.qcow2') }],
      registryPort: registry!.port,
      memoryMiB: 2048,
    });
    await guest().waitForLogin(REBOOT_TIMEOUT_MS);
    expect(await guest().runOk('cat /usr/lib/my-os-release')).toBe('v1');
    expect(await guest().runOk('command -v node setfattr getfattr || echo none')).toBe('none');
    expect(await guest().runOk('readlink -f /usr/bin/bootc')).toBe('/usr/bin/bootc');
  });

  it('follows the registry and keeps a local /etc change (installed machine, first block)', { timeout: 120_000 }, async () => {
    await runGuestBlock(guestBlocks[0]!.text);
    expect(seen.get('bootc status')).toContain('10.0.2.100:5000/my-os:latest');
  });

  it('upgrades to v2 from the registry, reboots into it, rolls back to v1', { timeout: 2_400_000 }, async () => {
    await host!.run(hostBlocks[1]!.text);
    await runGuestBlock(guestBlocks[1]!.text);
    const cats = [...seen.entries()].filter(([command]) => command.startsWith('cat '));
    expect(cats).toHaveLength(2);
    expect(cats[0]![1].split('\n')).toEqual(['v2', 'color=green', 'greeting=hello from this machine']);
    expect(cats[1]![1]).toBe('v1');
  });
});
