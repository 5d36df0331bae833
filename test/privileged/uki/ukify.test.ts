/**
 * `bootc container ukify` on the fixture v1 root filesystem: the UKI carries the image's
 * kernel, combined initrd, os-release and kargs.d; objdump and sbverify read it; signed
 * with Debian's snakeoil key (ovmf package) it verifies against that certificate.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { readFixturesIndex, v1Initramfs, v1Kernel, v1RootfsDir, fixturesHint } from '../../../fixtures/paths.js';
import { buildAddonInitrd, initrdPaddingBytes } from '../../../src/boot/prepare-root.js';
import { parsePe, sectionData } from '../../../src/uki/pe.js';
import { selectorOfDirectory } from '../../../src/uki/selector.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { suiteDir } from '../../support/temp-tree.js';

const SNAKEOIL_KEY = '/usr/share/ovmf/PkKek-1-snakeoil.key';
const SNAKEOIL_CERT = '/usr/share/ovmf/PkKek-1-snakeoil.pem';

const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, env: { NO_COLOR: '1' } });

const skip =
  needsRoot() ??
  needsFile(v1RootfsDir, fixturesHint) ??
  needsCommands('objdump', 'sbverify', 'sbsign', 'openssl') ??
  needsFile(SNAKEOIL_KEY, 'apt-get install ovmf');

describe.skipIf(explainSkip('privileged', skip))('bootc container ukify on fixture v1', () => {
  const work = suiteDir('ukify');
  let dir = '';
  let uki = '';
  beforeAll(() => {
    dir = work.path;
    uki = join(dir, 'v1.efi');
  });

  it('builds a UKI whose sections are the image\'s files', async () => {
    const r = await cli('container', 'ukify', '--rootfs', v1RootfsDir, '--karg', 'quiet', '--output', uki);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const image = readFileSync(uki);
    const pe = parsePe(image, uki);
    const section = (name: string): Buffer => Buffer.from(sectionData(image, pe.sections.find((s) => s.name === name)!));
    const kver = readFixturesIndex().kernelVersion;
    expect(section('.uname').toString()).toBe(kver);
    // The deployment selector of the rootfs lets install and prepare-root find its deployment.
    const selector = await selectorOfDirectory(v1RootfsDir);
    expect(section('.cmdline').toString()).toBe(`rw console=ttyS0,115200 quiet bootc.deploy-selector=${selector}`);
    expect(section('.osrel').toString()).toBe(readFileSync(join(v1RootfsDir, 'usr/lib/os-release'), 'utf8'));
    expect(section('.linux').equals(readFileSync(v1Kernel))).toBe(true);
    const initramfs = readFileSync(v1Initramfs);
    const combined = Buffer.concat([initramfs, Buffer.alloc(initrdPaddingBytes(initramfs.length)), Buffer.from(buildAddonInitrd())]);
    expect(section('.initrd').equals(combined)).toBe(true);
    // nothing but the UKI is left in the output directory
    expect(execFileSync('ls', ['-A', dir], { encoding: 'utf8' }).trim()).toBe('v1.efi');
  });

  it('objdump -h lists our sections at the addresses we wrote; sbverify reads it', () => {
    const pe = parsePe(readFileSync(uki), uki);
    const listing = execFileSync('objdump', ['-h', uki], { encoding: 'utf8' });
    for (const name of ['.osrel', '.cmdline', '.uname', '.initrd', '.linux']) {
      const s = pe.sections.find((x) => x.name === name)!;
      const row = listing.split('\n').find((l) => l.trim().split(/\s+/)[1] === name);
      expect(row, name).toBeDefined();
      const [, , size, vma] = row!.trim().split(/\s+/);
      expect([parseInt(size!, 16), parseInt(vma!, 16)]).toEqual([s.virtualSize, s.virtualAddress]);
    }
    const verify = spawnSync('sbverify', ['--list', uki], { encoding: 'utf8' });
    expect(verify.stdout + verify.stderr).toMatch(/No signature table present/);
    expect(verify.stdout + verify.stderr).not.toMatch(/gaps between/);
  });

  it('signs with sbsign; sbverify --cert accepts it and rejects a tampered copy', async () => {
    const key = join(dir, 'snakeoil.key');
    execFileSync('openssl', ['pkey', '-in', SNAKEOIL_KEY, '-passin', 'pass:snakeoil', '-out', key]);
    chmodSync(key, 0o600);
    const signed = join(dir, 'signed.efi');
    const r = await cli('container', 'ukify', '--rootfs', v1RootfsDir, '--output', signed, '--sign-key', key, '--sign-cert', SNAKEOIL_CERT);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(spawnSync('sbverify', ['--cert', SNAKEOIL_CERT, signed]).status).toBe(0);
    const inspect = await cli('internals', 'uki', 'inspect', signed, '--json');
    expect(JSON.parse(inspect.stdout)).toMatchObject({ signed: true, cmdline: `rw console=ttyS0,115200 bootc.deploy-selector=${await selectorOfDirectory(v1RootfsDir)}` });
    const tampered = join(dir, 'tampered.efi');
    const bytes = readFileSync(signed);
    const pe = parsePe(bytes, signed);
    const cmdline = pe.sections.find((s) => s.name === '.cmdline')!;
    bytes[cmdline.pointerToRawData] = 'X'.charCodeAt(0);
    writeFileSync(tampered, bytes);
    expect(spawnSync('sbverify', ['--cert', SNAKEOIL_CERT, tampered]).status).not.toBe(0);
    rmSync(tampered);
  });

  it('refuses a passphrase-protected key before building anything', async () => {
    const out = join(dir, 'never.efi');
    const r = await cli('container', 'ukify', '--rootfs', v1RootfsDir, '--output', out, '--sign-key', SNAKEOIL_KEY, '--sign-cert', SNAKEOIL_CERT);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/is protected by a passphrase/);
    expect(r.stderr).toMatch(/hint: decrypt it/);
    expect(() => statSync(out)).toThrow();
  });

  it('internals uki extract writes one section', async () => {
    const out = join(dir, 'osrel');
    const r = await cli('internals', 'uki', 'extract', uki, '.osrel', out);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^PRETTY_NAME=|^NAME=|ID=/m);
    rmSync(out);
  });
});
