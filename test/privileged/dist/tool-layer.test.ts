/**
 * What `make dist`, `make tool-image` and `make base-image` ship, checked on the real
 * artefacts: the single executable runs in a chroot of the base image (which has no
 * Node.js and no attr), the tool layer's files collide with nothing a Debian package
 * installs, and `npm pack` gives a package that `npm install -g` installs and runs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsImage, needsRoot } from '../../support/tier.js';
import { testDir, DISK_TMP } from '../../support/temp-tree.js';

const repo = process.cwd();
const BASE_IMAGE = 'localhost/debian-bootc:12';
const TOOL_IMAGE = 'localhost/bootc-ts:latest';
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
const executable = join(repo, 'dist/bootc');

const skipReason = (): string | null =>
  needsRoot() ??
  needsCommands('podman', 'chroot', 'mount') ??
  needsFile(executable, 'run `make dist`') ??
  needsImage(BASE_IMAGE, 'base-image') ??
  needsImage(TOOL_IMAGE, 'tool-image');

/** Every path below `dir` (files and links, not directories), relative to it, with a leading /. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push('/' + relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

describe.skipIf(explainSkip('privileged', skipReason()))('the tool layer and the single executable', () => {
  let base = '';
  const mounts: string[] = [];
  beforeAll(() => {
    base = execFileSync('podman', ['image', 'mount', BASE_IMAGE], { encoding: 'utf8' }).trim();
  });
  afterAll(() => {
    for (const m of mounts.reverse()) execFileSync('umount', [m]);
    if (base !== '') execFileSync('podman', ['image', 'unmount', BASE_IMAGE]);
  });

  it('the base image has neither Node.js nor attr of its own, and its bootc is the tool layer', () => {
    for (const dir of ['usr/bin', 'usr/sbin', 'usr/local/bin']) {
      for (const program of ['node', 'nodejs', 'getfattr', 'setfattr']) expect(existsSync(join(base, dir, program)), `${dir}/${program}`).toBe(false);
    }
    const packages = readFileSync(join(base, 'var/lib/dpkg/status'), 'utf8');
    expect(packages).not.toMatch(/^Package: (nodejs|attr)$/m);
    expect(existsSync(join(base, 'usr/bin/bootc'))).toBe(true);
  });

  it('dist/bootc answers --version and status --help in a chroot of the base image', () => {
    // The executable under test over the image's own copy, and /proc for node's start-up.
    execFileSync('mount', ['--bind', executable, join(base, 'usr/bin/bootc')]);
    mounts.push(join(base, 'usr/bin/bootc'));
    execFileSync('mount', ['-t', 'proc', 'proc', join(base, 'proc')]);
    mounts.push(join(base, 'proc'));
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' };
    expect(execFileSync('chroot', [base, '/usr/bin/bootc', '--version'], { encoding: 'utf8', env }).trim()).toBe(version);
    const help = execFileSync('chroot', [base, '/usr/bin/bootc', 'status', '--help'], { encoding: 'utf8', env });
    expect(help).toMatch(/^bootc status/m);
    expect(help).toMatch(/--format/);
  });

  it("no file of the tool layer is one a Debian package of the base image installs", () => {
    const tool = execFileSync('podman', ['image', 'mount', TOOL_IMAGE], { encoding: 'utf8' }).trim();
    try {
      const files = listFiles(tool);
      expect(files).toContain('/usr/bin/bootc');
      expect(files).toContain('/usr/lib/bootc/bin/setfattr');
      expect(files).toContain('/usr/lib/systemd/system/multi-user.target.wants/bootc-finalize-staged.path');
      const info = join(base, 'var/lib/dpkg/info');
      const owned = new Set<string>();
      for (const list of readdirSync(info).filter((n) => n.endsWith('.list'))) {
        for (const line of readFileSync(join(info, list), 'utf8').split('\n')) if (line !== '') owned.add(line);
      }
      expect(owned.size).toBeGreaterThan(10_000);
      // Debian 12 installs into /lib and /bin too, which are /usr/lib and /usr/bin.
      const collisions = files.filter((f) => owned.has(f) || owned.has(f.replace(/^\/usr\//, '/')));
      expect(collisions).toEqual([]);
    } finally {
      execFileSync('podman', ['image', 'unmount', TOOL_IMAGE]);
    }
  });
});

describe.skipIf(explainSkip('privileged', needsRoot() ?? needsCommands('npm')))('npm pack', () => {
  it('gives a package that npm install -g installs and runs', { timeout: 300_000 }, async () => {
    const tmp = testDir('npm-pack', { under: DISK_TMP });
    const packed = await execa('npm', ['pack', '--silent', '--pack-destination', tmp, repo]);
    const tarball = join(tmp, packed.stdout.trim().split('\n').pop()!);
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
    expect(listing).toMatch(/^package\/dist\/cli\.js$/m);
    expect(listing).not.toMatch(/dist\/bootc$|dist\/sea\//m);
    // The dependencies come from npm's cache where `npm ci` left them, else the registry.
    await execa('npm', ['install', '-g', '--prefer-offline', '--no-audit', '--no-fund', '--prefix', join(tmp, 'prefix'), tarball]);
    const bin = join(tmp, 'prefix/bin/bootc');
    expect((await execa(bin, ['--version'])).stdout.trim()).toBe(version);
    expect((await execa(bin, ['status', '--help'])).stdout).toMatch(/^bootc status/m);
  });
});
