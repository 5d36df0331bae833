/**
 * Privileged tier: `bootc image build-disk` (the real CLI, as a user runs it) on bad input.
 * Each case ends with exit code 1, one error line and a hint, and leaves nothing behind:
 * no partial disk in the output directory, no staged root in the work directory. One blob
 * store serves every case, so each image is pulled at most once.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeNewcCpio } from '../../../src/boot/cpio.js';
import { run } from '../../../src/core/exec.js';
import { diskImageOutputPath } from '../../../src/build-disk/disk-image.js';
import { fixturesHint, fixturesIndexPath, ociLayoutDir, ociLayoutRef, readFixturesIndex } from '../../../fixtures/paths.js';
import { filesUnder } from '../../support/files.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { tarOf } from '../oci/layout-builder.js';
import { deriveFixtureV1, WITHOUT_FIXTURE_CONSOLE } from '../../support/derived-fixture.js';
import { deploymentId } from '../../../src/deploy/paths.js';
import { writeFixtureWithLayer } from '../oci/fixture-layout.js';
import { suiteDir } from '../../support/temp-tree.js';

const skip = explainSkip(
  'privileged',
  needsRoot() ??
    needsCommands('sfdisk', 'mkfs.ext4', 'mkfs.btrfs', 'mkfs.fat', 'mcopy', 'qemu-img', 'gzip') ??
    needsFile(join(ociLayoutDir, 'index.json'), fixturesHint) ??
    needsFile(fixturesIndexPath, fixturesHint),
);

/**
 * An OCI layout at `dir` holding fixture:v1 plus one layer that replaces its initramfs with
 * an initramfs-tools style one (/init a shell script), tagged `tag`.
 */
async function writeScriptInitramfsImage(dir: string, tag: string): Promise<void> {
  const initramfs = gzipSync(
    writeNewcCpio([
      { kind: 'file', path: 'init', content: '#!/bin/sh\nexec run-init /root /sbin/init\n', mode: 0o755 },
      { kind: 'directory', path: 'scripts' },
      { kind: 'file', path: 'scripts/local', content: '# initramfs-tools\n' },
    ]),
  );
  const tar = await tarOf({ [`usr/lib/modules/${readFixturesIndex().kernelVersion}/initramfs.img`]: initramfs });
  writeFixtureWithLayer(dir, tag, tar, 'test: an initramfs-tools initramfs');
}

describe.skipIf(skip)('bootc image build-disk on bad input', () => {
  let tmp: string;
  let store: string;
  let work: string;
  let caseNo = 0;

  const scratch = suiteDir('build-disk-cli');
  beforeAll(() => {
    tmp = scratch.path;
    store = join(tmp, 'store');
    work = join(tmp, 'work');
  });

  const newOutput = (): string => join(tmp, `output-${++caseNo}`);

  const buildDisk = (image: string, output: string, flags: string[] = [], env: Record<string, string> = {}) =>
    execa(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'image', 'build-disk', image, '--output', output, '--store', store, '--work-dir', work, '--quiet', ...flags],
      { reject: false, env: { NO_COLOR: '1', ...env } },
    );

  /** Exit code 1, the error and hint lines, nothing left in the output or work directory. */
  async function expectRefused(image: string, flags: string[], error: RegExp, hint: RegExp, env: Record<string, string> = {}): Promise<string> {
    const output = newOutput();
    const r = await buildDisk(image, output, flags, env);
    expect(r.exitCode, r.stderr).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('error: '))).toHaveLength(1);
    expect(lines.find((l) => l.startsWith('error: '))).toMatch(error);
    expect(lines.find((l) => l.startsWith('hint: '))).toMatch(hint);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a user error, not a stack trace
    expect(filesUnder(output)).toEqual([]);
    expect(filesUnder(work)).toEqual([]);
    return r.stderr;
  }

  it('refuses an image without a kernel', async () => {
    await expectRefused(
      ociLayoutRef('nokernel'),
      [],
      /image oci:.*:nokernel has no kernel: \/usr\/lib\/modules\/<kver>\/vmlinuz is missing/,
      /install the kernel package/,
    );
  }, 180_000);

  it('refuses an image whose initramfs is not systemd-based, saying why', async () => {
    const layout = join(tmp, 'script-initramfs-layout');
    await writeScriptInitramfsImage(layout, 'script-init');
    await expectRefused(
      `oci:${layout}:script-init`,
      [],
      /the initramfs of image oci:.*:script-init is not systemd-based \(its \/init is a shell script\)/,
      /prepare-root runs as a systemd unit .*dracut and its systemd module/,
    );
  }, 180_000);

  it('refuses an image for another architecture, naming the one it has', async () => {
    await expectRefused(ociLayoutRef('arm64'), [], /has no linux\/amd64 variant; it has: linux\/arm64/, /--platform/);
  }, 60_000);

  it('refuses a tag the OCI layout does not hold, listing the tags it has', async () => {
    await expectRefused(
      `oci:${ociLayoutDir}:no-such-tag`,
      [],
      /OCI layout .* has no image named "no-such-tag"; it has: .*\bv1\b/,
      /use one of those, e\.g\. oci:/,
    );
  }, 60_000);

  it('--type iso: refuses an image the live installer could not run in, naming the packages, with nothing written', async () => {
    // fixture:v1 has no sfdisk, mkfs.fat or mtools; a qcow2 asked for in the same run is not made either.
    await expectRefused(ociLayoutRef('v1'), ['--type', 'iso', '--type', 'qcow2'], /the image cannot run the installer: it has no sfdisk, mkfs\.fat, mcopy/, /apt-get install fdisk dosfstools mtools/);
  }, 180_000);

  it('--type iso: refuses config.toml users and --installer-answers without iso, before pulling', async () => {
    const config = join(tmp, 'users.toml');
    writeFileSync(config, '[[customizations.user]]\nname = "admin"\n');
    const storeBefore = filesUnder(store);
    await expectRefused(ociLayoutRef('v1'), ['--type', 'iso', '--config', config], /\[\[customizations\.user\]\] cannot be carried to systems installed from an ISO/, /installer answers/);
    const answers = join(tmp, 'answers.toml');
    writeFileSync(answers, '[disk]\nsize = "largest"\n');
    await expectRefused(ociLayoutRef('v1'), ['--installer-answers', answers], /--installer-answers is for an installer medium/, /add --type iso/);
    writeFileSync(answers, '[disk]\nsize = "huge"\n');
    await expectRefused(ociLayoutRef('v1'), ['--type', 'iso', '--installer-answers', answers], /answers\.toml: `disk\.size`/, /an answers file has/);
    expect(filesUnder(store)).toEqual(storeBefore);
  }, 60_000);

  it('refuses a config.toml with an unknown key before pulling', async () => {
    const config = join(tmp, 'bad-config.toml');
    writeFileSync(config, '[customizations.kernel]\nappend = "quiet"\n[customizations.bogus]\nx = 1\n');
    const storeBefore = filesUnder(store);
    await expectRefused(ociLayoutRef('v1'), ['--config', config], /bad-config\.toml: .*"customizations\.bogus"/, /supported: \[\[customizations\.user\]\]/);
    expect(filesUnder(store)).toEqual(storeBefore);
  }, 60_000);

  it('reads --config - from stdin as JSON, as bib does, and refuses a bad one before pulling', async () => {
    const output = newOutput();
    const freshStore = join(tmp, 'store-never-used-by-stdin');
    const r = await execa(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'image', 'build-disk', '--config', '-', ociLayoutRef('v1'), '--output', output, '--store', freshStore, '--work-dir', work, '--quiet'],
      { reject: false, env: { NO_COLOR: '1' }, input: '{"customizations": {"kernel": {"append": "quiet"}, "bogus": {}}}' },
    );
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/error: stdin: unsupported key "customizations\.bogus"/);
    expect(existsSync(freshStore)).toBe(false);
    expect(filesUnder(output)).toEqual([]);
  }, 60_000);

  it('refuses a disk size too small, saying how much is needed', async () => {
    const stderr = await expectRefused(
      ociLayoutRef('v1'),
      ['--size', '100M'],
      /a disk of 100 MiB is too small for this image: it needs at least (\d+) MiB/,
      /ask for --size \d+M or more/,
    );
    const needed = Number(/needs at least (\d+) MiB/.exec(stderr)![1]);
    expect(stderr).toContain(`--size ${needed}M`);
    expect(needed).toBeGreaterThan(1024); // the 1 GiB ESP alone is more than asked for
  }, 180_000);

  it('refuses --rootfs xfs before pulling, saying it needs a loop device', async () => {
    const freshStore = join(tmp, 'store-never-used-by-xfs');
    const output = newOutput();
    const r = await execa(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'image', 'build-disk', ociLayoutRef('v1'), '--rootfs', 'xfs', '--output', output, '--store', freshStore, '--work-dir', work, '--quiet'],
      { reject: false, env: { NO_COLOR: '1' } },
    );
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/error: .*xfs root filesystem cannot be built without a loop device/);
    expect(r.stderr).toMatch(/hint: use --rootfs ext4 or --rootfs btrfs/);
    expect(existsSync(freshStore)).toBe(false);
    expect(filesUnder(output)).toEqual([]);
  }, 60_000);

  it('refuses an image whose install config asks for xfs before staging or writing, naming --rootfs', async () => {
    const image = await deriveFixtureV1(join(tmp, 'xfs-config-layout'), 'xfs-config', {
      'usr/lib/bootc/install/00-xfs.toml': '[install.filesystem.root]\ntype = "xfs"\n',
    }, 'an install config asking for xfs');
    await expectRefused(
      image,
      [],
      /the image's install configuration asks for an xfs root \(\[install\.filesystem\.root\] type\), and an xfs root filesystem cannot be built without a loop device/,
      /--rootfs ext4 or --rootfs btrfs/,
    );
  }, 180_000);

  it('refuses an install config key it cannot honour, by name', async () => {
    const image = await deriveFixtureV1(join(tmp, 'grub-config-layout'), 'grub-config', {
      'usr/lib/bootc/install/00-grub.toml': '[install]\nbootloader = "grub"\n',
    }, 'an install config asking for GRUB');
    await expectRefused(image, [], /`bootloader = "grub"`: this bootc boots UEFI through systemd-boot, never GRUB/, /set bootloader to "hybrid" or "systemd"/);
  }, 180_000);

  it('applies the image\'s install config; --no-default-kernel-args leaves only the image\'s and the user\'s arguments', async () => {
    // No kargs.d console: the command line then holds exactly what the config and --karg say.
    const layout = join(tmp, 'config-layout');
    const image = await deriveFixtureV1(layout, 'with-config', {
      ...WITHOUT_FIXTURE_CONSOLE,
      'usr/lib/bootc/install/00-os.toml': '[install]\nkargs = ["nosmt"]\nstateroot = "myos"\n[install.filesystem.root]\ntype = "btrfs"\n',
    }, 'an install config, and no kargs.d');
    const output = newOutput();
    const r = await buildDisk(image, output, ['--no-default-kernel-args', '--karg', 'quiet']);
    expect(r.exitCode, r.stderr).toBe(0);
    const digest = /Digest: (sha256:[0-9a-f]{64})/.exec(r.stdout)![1]!;
    const uuid = /Root filesystem: btrfs UUID=([0-9a-f-]{36})/.exec(r.stdout)![1]!;
    expect(r.stdout).toContain(`Deployment: myos/${deploymentId(digest, 0)}`);
    expect(r.stdout).toContain(`Kernel arguments: root=UUID=${uuid} rw nosmt quiet bootc.deploy=myos/${deploymentId(digest, 0)}\n`);
  }, 300_000);

  it('names the Debian package of a missing tool, and removes the half-written disk', async () => {
    // A PATH holding every program of this machine but qemu-img, which converts at the very end.
    const bin = join(tmp, 'path-without-qemu-img');
    mkdirSync(bin);
    for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        if (name !== 'qemu-img' && !existsSync(join(bin, name))) symlinkSync(join(dir, name), join(bin, name));
      }
    }
    await expectRefused(ociLayoutRef('v1'), [], /`qemu-img` is not installed/, /install the Debian package qemu-utils/, { PATH: bin });
  }, 180_000);

  it('refuses an existing output before pulling, and replaces it with --force', async () => {
    const output = newOutput();
    const disk = diskImageOutputPath(output, 'qcow2');
    mkdirSync(join(disk, '..'), { recursive: true });
    writeFileSync(disk, 'an earlier build\n');
    // A store never used: a pull would create it.
    const freshStore = join(tmp, 'unused-store');
    const refused = await execa(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'image', 'build-disk', ociLayoutRef('v1'), '--output', output, '--store', freshStore, '--work-dir', work, '--quiet'],
      { reject: false, env: { NO_COLOR: '1' } },
    );
    expect(refused.exitCode, refused.stderr).toBe(1);
    expect(refused.stderr).toContain(`error: Building a disk image from ${ociLayoutRef('v1')}: the output ${disk} already exists`);
    expect(refused.stderr).toContain('hint: remove it, choose another --output, or pass --force');
    expect(existsSync(freshStore)).toBe(false);
    expect(readFileSync(disk, 'utf8')).toBe('an earlier build\n');
    expect(filesUnder(work)).toEqual([]);

    const forced = await buildDisk(ociLayoutRef('v1'), output, ['--force']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.stdout).toContain(`Output: ${disk}`);
    // bib's defaults after the image's kargs.d (its serial console), as bib passes them as --karg.
    expect(forced.stdout).toMatch(/Kernel arguments: root=UUID=\S+ rw console=ttyS0,115200 console=tty0 console=ttyS0 bootc\.deploy=/);
    const info = JSON.parse((await run({ description: 'Reading the disk image', argv: ['qemu-img', 'info', '--output=json', disk] })).stdout) as {
      format: string;
    };
    expect(info.format).toBe('qcow2');
    expect(statSync(disk).size).toBeGreaterThan(100 * 1024 * 1024);
    expect(filesUnder(output)).toEqual(['qcow2/disk.qcow2']);
    expect(filesUnder(work)).toEqual([]);
  }, 240_000);
});
