import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import { parsePe, sectionData } from '../../../src/uki/pe.js';
import { assembleUkiBytes, checkSplash, extractSection, inspectUki, readImageOsRelease, resolveInRoot, ukiSections } from '../../../src/uki/uki.js';
import { explainSkip, needsFile } from '../../support/tier.js';
import { testDir, suiteDir } from '../../support/temp-tree.js';

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));
const names = (sections: Array<{ name: string }>): string[] => sections.map((s) => s.name);

describe('UKI sections', () => {
  it('are placed in ukify order, the kernel last', () => {
    const sections = ukiSections({
      osRelease: bytes('ID=debian\n'),
      cmdline: 'console=ttyS0 quiet',
      kernelVersion: '6.1.0-1-amd64',
      linux: bytes('kernel'),
      initrd: bytes('initrd'),
      splash: bytes('BM'),
    });
    expect(names(sections)).toEqual(['.osrel', '.cmdline', '.uname', '.splash', '.initrd', '.linux']);
    expect(Buffer.from(sections[1]!.content as Uint8Array).toString()).toBe('console=ttyS0 quiet');
    expect(Buffer.from(sections[2]!.content as Uint8Array).toString()).toBe('6.1.0-1-amd64');
  });

  it('leave out what is absent or empty', () => {
    const sections = ukiSections({ osRelease: bytes('ID=x\n'), cmdline: '', kernelVersion: '6.1', linux: bytes('k') });
    expect(names(sections)).toEqual(['.osrel', '.uname', '.linux']);
  });
});

describe('paths inside an image root', () => {
  const imageRoot = (): string => testDir('uki-root', { files: { 'usr/lib/os-release': 'ID=fixture\n', etc: { directory: true } } });

  it('follow a relative os-release symlink inside the root', async () => {
    const root = imageRoot();
    symlinkSync('../usr/lib/os-release', join(root, 'etc/os-release'));
    expect(await resolveInRoot(root, 'etc/os-release')).toBe(join(root, 'usr/lib/os-release'));
    expect(Buffer.from(await readImageOsRelease(root)).toString()).toBe('ID=fixture\n');
  });

  it('resolve an absolute symlink against the root, not the host', async () => {
    const root = imageRoot();
    symlinkSync('/usr/lib/os-release', join(root, 'abs-link'));
    symlinkSync('../../../../../../etc/passwd', join(root, 'escape'));
    expect(await resolveInRoot(root, 'abs-link')).toBe(join(root, 'usr/lib/os-release'));
    expect(await resolveInRoot(root, 'escape')).toBe(join(root, 'etc/passwd'));
  });

  it('a root without os-release is a UserError', async () => {
    await expect(readImageOsRelease(testDir('uki-empty'))).rejects.toThrow(/has no os-release/);
  });
});

const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

describe.skipIf(explainSkip('unit', needsFile(STUB, 'apt-get install systemd-boot-efi')))('assembling on the real stub', () => {
  const dir = suiteDir('uki');
  const stub = new Uint8Array(readFileSync(STUB));
  const contents = {
    osRelease: bytes('ID=debian\nVERSION_ID=12\n'),
    cmdline: 'console=ttyS0',
    kernelVersion: '6.1.0-1-amd64',
    linux: new Uint8Array(5000).fill(7),
    initrd: new Uint8Array(3000).fill(9),
  };

  it('keeps the stub\'s sections and its one .sbat, and adds ours', async () => {
    const image = assembleUkiBytes(stub, STUB, contents);
    const pe = parsePe(image, 'uki');
    const stubNames = names(parsePe(stub, STUB).sections);
    expect(names(pe.sections)).toEqual([...stubNames, '.osrel', '.cmdline', '.uname', '.initrd', '.linux']);
    expect(pe.sections.filter((s) => s.name === '.sbat')).toHaveLength(1);
    const file = join(dir.path, 'uki.efi');
    writeFileSync(file, image);
    const inspection = await inspectUki(file);
    expect(inspection).toMatchObject({ cmdline: 'console=ttyS0', uname: '6.1.0-1-amd64', osRelease: 'ID=debian\nVERSION_ID=12\n', signed: false });
    await extractSection(file, '.initrd', join(dir.path, 'initrd'));
    expect(readFileSync(join(dir.path, 'initrd'))).toEqual(Buffer.from(contents.initrd));
    expect(Buffer.from(sectionData(image, pe.sections.at(-1)!))).toEqual(Buffer.from(contents.linux));
  });

  it('refuses to build on something that is already a UKI', () => {
    const image = assembleUkiBytes(stub, STUB, contents);
    expect(() => assembleUkiBytes(image, 'uki.efi', contents)).toThrow(/already contains a kernel/);
  });

  it('refuses a kernel for another machine type', () => {
    // an arm64 "kernel": the stub's own headers with the machine field changed
    const arm = new Uint8Array(stub);
    const pe = parsePe(arm, 'x');
    new DataView(arm.buffer).setUint16(pe.peOffset + 4, 0xaa64, true);
    let caught: unknown;
    try {
      assembleUkiBytes(stub, STUB, { ...contents, linux: arm });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as Error).message).toMatch(/machine type 0xaa64 but the stub .* for 0x8664/);
  });

  it('refuses a stub that is not an EFI application', () => {
    const console = new Uint8Array(stub);
    const pe = parsePe(console, 'x');
    new DataView(console.buffer).setUint16(pe.peOffset + 4 + 20 + 68, 3, true);
    expect(() => assembleUkiBytes(console, 'console.exe', contents)).toThrow(/console\.exe is not an EFI application \(PE subsystem 3\)/);
  });

  it('accepts only a BMP splash', () => {
    expect(() => checkSplash(bytes('BM\0\0'), 'splash.bmp')).not.toThrow();
    expect(() => checkSplash(bytes('\x89PNG'), 'splash.png')).toThrow(/splash\.png is not a BMP image/);
  });

  it('extracting a missing section names the sections there are', async () => {
    const file = join(dir.path, 'uki2.efi');
    writeFileSync(file, assembleUkiBytes(stub, STUB, contents));
    await expect(extractSection(file, '.splash', join(dir.path, 'x'))).rejects.toThrow(/has no \.splash section/);
  });
});
