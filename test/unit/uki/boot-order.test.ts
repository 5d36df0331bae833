/**
 * Reordering UKIs (rollback with Type #2 entries): the `.osrel` IMAGE_VERSION rewritten in
 * place on a UKI assembled on the real stub, and the mounted-ESP helpers the updates code
 * uses (stage, finalize, read, reorder) on a directory standing in for /boot.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ukiOsRelease } from '../../../src/boot/uki-entry.js';
import { finalizeStagedUki, readUkisInDir, setUkiBootOrder, stageUkiInDir } from '../../../src/boot/uki-boot-dir.js';
import { UserError, unwrapContext } from '../../../src/core/errors.js';
import { CERTIFICATE_TABLE_DIRECTORY, checksumOffset, dataDirectoryOffset, parsePe, peChecksum, sectionData } from '../../../src/uki/pe.js';
import { bootOrderOfOsrel, withBootOrder } from '../../../src/uki/boot-order.js';
import { assembleUkiBytes } from '../../../src/uki/uki.js';
import { explainSkip, needsFile } from '../../support/tier.js';
import { testDir } from '../../support/temp-tree.js';

const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
const IMAGE_OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID=12\n';

describe('bootOrderOfOsrel', () => {
  it('reads IMAGE_VERSION of an .osrel ordered by bootc', () => {
    expect(bootOrderOfOsrel(ukiOsRelease(IMAGE_OS_RELEASE, { title: 'T', bootOrder: 12 }))).toBe(12);
  });
  it('is null for an image\'s own os-release', () => {
    expect(bootOrderOfOsrel(IMAGE_OS_RELEASE + 'IMAGE_VERSION=3\n')).toBeNull();
  });
});

describe.skipIf(explainSkip('unit', needsFile(STUB, 'apt-get install systemd-boot-efi')))('withBootOrder on a UKI built on the real stub', () => {
  const stub = new Uint8Array(readFileSync(STUB));
  const uki = (bootOrder: number, osRelease?: string): Uint8Array =>
    assembleUkiBytes(stub, STUB, {
      osRelease: new Uint8Array(Buffer.from(osRelease ?? ukiOsRelease(IMAGE_OS_RELEASE, { title: 'Debian 1', bootOrder }))),
      cmdline: 'console=ttyS0',
      kernelVersion: '6.1.0-1-amd64',
      linux: new Uint8Array(5000).fill(7),
      initrd: new Uint8Array(3000).fill(9),
    });
  const text = (bytes: Uint8Array, name: string): string => {
    const section = parsePe(bytes, 'uki').sections.find((s) => s.name === name)!;
    return Buffer.from(sectionData(bytes, section)).toString('utf8');
  };

  it('rewrites IMAGE_VERSION only, keeps every other section, and fixes the checksum', () => {
    const before = uki(9);
    const { bytes, signatureRemoved } = withBootOrder(before, 'uki', 10);
    expect(signatureRemoved).toBe(false);
    expect(bootOrderOfOsrel(text(bytes, '.osrel'))).toBe(10);
    expect(text(bytes, '.osrel')).toBe(text(before, '.osrel').replace('IMAGE_VERSION=9', 'IMAGE_VERSION=10'));
    expect(bytes.byteLength).toBe(before.byteLength);
    const [a, b] = [parsePe(before, 'a'), parsePe(bytes, 'b')];
    for (const s of a.sections.filter((x) => x.name !== '.osrel')) {
      const t = b.sections.find((x) => x.name === s.name)!;
      expect(Buffer.from(sectionData(bytes, t)).equals(Buffer.from(sectionData(before, s))), s.name).toBe(true);
    }
    expect(b.checkSum).toBe(peChecksum(bytes, checksumOffset(b)));
  });

  it('drops a signature (the certificate table at the end) and says so', () => {
    const plain = uki(1);
    const headers = parsePe(plain, 'uki');
    const signed = new Uint8Array(plain.byteLength + 16);
    signed.set(plain);
    const view = new DataView(signed.buffer);
    view.setUint32(dataDirectoryOffset(headers, CERTIFICATE_TABLE_DIRECTORY), plain.byteLength, true);
    view.setUint32(dataDirectoryOffset(headers, CERTIFICATE_TABLE_DIRECTORY) + 4, 16, true);
    const { bytes, signatureRemoved } = withBootOrder(signed, 'uki', 2);
    expect(signatureRemoved).toBe(true);
    expect(bytes.byteLength).toBe(plain.byteLength);
    expect(parsePe(bytes, 'uki').dataDirectories[CERTIFICATE_TABLE_DIRECTORY]).toEqual({ address: 0, size: 0 });
  });

  it('refuses a UKI whose .osrel is the image\'s own (a sealed UKI)', () => {
    expect(() => withBootOrder(uki(0, IMAGE_OS_RELEASE), 'sealed.efi', 2)).toThrow(UserError);
  });

  describe('on a mounted ESP', () => {
    let boot: string;
    beforeEach(() => {
      boot = testDir('uki-boot-dir');
    });

    it('stages a UKI out of systemd-boot\'s sight, finalises it, reads and reorders it', async () => {
      const built = join(boot, 'built.efi');
      writeFileSync(built, uki(1));
      const name = 'bootc-default-a.0+3.efi';
      await stageUkiInDir(boot, name, built);
      expect(readdirSync(join(boot, 'EFI/Linux'))).toEqual([`${name}.staged`]);
      expect(await readUkisInDir(boot)).toEqual([]);
      await finalizeStagedUki(boot, name);
      mkdirSync(join(boot, 'EFI/Linux'), { recursive: true });
      writeFileSync(join(boot, 'EFI/Linux/bootc-default-b.0.efi'), uki(2));
      expect((await readUkisInDir(boot)).map((u) => [u.fileName, u.version, u.title])).toEqual([
        [name, '1', 'Debian 1'],
        ['bootc-default-b.0.efi', '2', 'Debian 1'],
      ]);
      await setUkiBootOrder(boot, name, 3);
      expect((await readUkisInDir(boot)).find((u) => u.fileName === name)?.version).toBe('3');
      expect(existsSync(join(boot, 'EFI/Linux', `${name}.tmp`))).toBe(false);
    });

    it('refuses to reorder a signed UKI without the key, leaving it as it was', async () => {
      const plain = uki(1);
      const headers = parsePe(plain, 'uki');
      const signed = new Uint8Array(plain.byteLength + 16);
      signed.set(plain);
      new DataView(signed.buffer).setUint32(dataDirectoryOffset(headers, CERTIFICATE_TABLE_DIRECTORY), plain.byteLength, true);
      new DataView(signed.buffer).setUint32(dataDirectoryOffset(headers, CERTIFICATE_TABLE_DIRECTORY) + 4, 16, true);
      mkdirSync(join(boot, 'EFI/Linux'), { recursive: true });
      const path = join(boot, 'EFI/Linux/bootc-default-a.0.efi');
      writeFileSync(path, signed);
      const err = await setUkiBootOrder(boot, 'bootc-default-a.0.efi', 5).catch((e: unknown) => e);
      expect(unwrapContext(err).root).toBeInstanceOf(UserError);
      expect(Buffer.from(readFileSync(path)).equals(Buffer.from(signed))).toBe(true);
    });
  });
});
