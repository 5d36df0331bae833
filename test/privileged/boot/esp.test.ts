/**
 * The ESP through its one interface, both ways: not mounted (mkfs.fat and mtools, on a file of
 * its own and at an offset inside a bigger file) and mounted (a directory). Entries written,
 * replaced, listed, read back and removed alike, no temporary name left behind; the FAT
 * accepted by fsck.vfat.
 */
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { UserError } from '../../../src/core/errors.js';
import {
  espInDirectory,
  espInImage,
  formatEsp,
  installSystemdBoot,
  listBootEntries,
  readBootEntry,
  writeBootEntry,
  writeLoaderConf,
  type Esp,
  type EspLocation,
} from '../../../src/boot/esp.js';
import { parseBlsEntry, type BlsEntry } from '../../../src/boot/bls.js';
import { regenerateGrubMenu, writeGrubMenu } from '../../../src/boot/grub-boot.js';
import { explainSkip, needsCommands, needsFile } from '../../support/tier.js';
import { suiteDir, testDir } from '../../support/temp-tree.js';

const skip = explainSkip(
  'privileged',
  needsCommands('mkfs.fat', 'fsck.vfat', 'mcopy', 'mren', 'mdir', 'mdel', 'mmd') ??
    needsFile('/usr/lib/systemd/boot/efi/systemd-bootx64.efi', 'install the Debian package systemd-boot-efi'),
);

const MiB = 1024 * 1024;
const entry = (version: string): BlsEntry => ({
  title: `Test ${version}`,
  version,
  sortKey: 'bootc',
  linux: '/bootc/d1/vmlinuz',
  initrd: '/bootc/d1/initrd.img',
  options: 'root=UUID=x rw bootc.deploy=default/d1',
});

async function sparseFile(path: string, bytes: number): Promise<void> {
  const f = await open(path, 'w');
  await f.truncate(bytes);
  await f.close();
}

describe.skipIf(skip)('ESP with mtools', () => {
  let tmp: string;
  const scratch = suiteDir('esp');
  beforeAll(() => {
    tmp = scratch.path;
  });

  const ways: Array<[string, () => Promise<{ esp: Esp; check?: EspLocation }>]> = [
    [
      'an ESP file (mtools)',
      async () => {
        const loc: EspLocation = { image: join(tmp, 'esp.img'), offsetBytes: 0 };
        await sparseFile(loc.image, 64 * MiB);
        await formatEsp(loc, 64 * MiB);
        return { esp: espInImage(loc), check: loc };
      },
    ],
    ['a mounted ESP (a directory)', async () => ({ esp: espInDirectory(testDir('esp-mounted')) })],
  ];

  it.each(ways)('writes, replaces, lists, reads and removes entries in %s', async (_, make) => {
    const { esp, check } = await make();
    // No host deployment dir with systemd-boot: the host copy is the fallback.
    await installSystemdBoot(esp, join(tmp, 'no-such-deployment'));
    await writeLoaderConf(esp, { timeoutSeconds: 5 });
    await writeBootEntry(esp, 'bootc-default-d1+3.conf', entry('1'));
    await writeBootEntry(esp, 'bootc-default-d2+3.conf', entry('2'));
    await writeBootEntry(esp, 'bootc-default-d1+3.conf', entry('7'));
    writeFileSync(join(tmp, 'foreign.conf'), 'title other\n');
    await esp.copyIn([{ path: 'loader/entries/debian.conf', hostPath: join(tmp, 'foreign.conf') }]);

    expect(await listBootEntries(esp)).toEqual(['bootc-default-d1+3.conf', 'bootc-default-d2+3.conf']);
    expect((await esp.list('loader/entries')).sort()).toEqual(['bootc-default-d1+3.conf', 'bootc-default-d2+3.conf', 'debian.conf']);
    expect(parseBlsEntry(await readBootEntry(esp, 'bootc-default-d1+3.conf'))['version']).toEqual(['7']);
    expect(await esp.readText('loader/loader.conf')).toBe('default bootc-*\ntimeout 5\neditor no\n');
    expect(await esp.readText('loader/no-such.conf')).toBeNull();
    await expect(readBootEntry(esp, 'bootc-default-d9+3.conf')).rejects.toThrow(/has no boot entry bootc-default-d9\+3\.conf/);
    expect((await esp.list('EFI/BOOT')).map((n) => n.toUpperCase())).toEqual(['BOOTX64.EFI']);
    expect((await esp.list('loader')).sort()).toEqual(['entries', 'loader.conf']);

    await esp.remove('loader/entries/bootc-default-d2+3.conf');
    await esp.remove('loader/entries/bootc-default-d2+3.conf');
    expect(await listBootEntries(esp)).toEqual(['bootc-default-d1+3.conf']);
    expect(await esp.list('no/such/dir')).toEqual([]);
    if (check) await run({ description: 'Checking the ESP', argv: ['fsck.vfat', '-n', check.image] });
  });

  it('finds the GRUB menu it wrote, whatever case FAT lists its short name in, and regenerates only that one', async () => {
    const loc: EspLocation = { image: join(tmp, 'grub-esp.img'), offsetBytes: 0 };
    await sparseFile(loc.image, 64 * MiB);
    await formatEsp(loc, 64 * MiB);
    const esp = espInImage(loc);
    await writeLoaderConf(esp, { timeoutSeconds: 4 });
    await writeBootEntry(esp, 'bootc-default-d1+3.conf', entry('1'));
    expect(await esp.exists('grub/grub.cfg')).toBe(false);
    expect(await regenerateGrubMenu(esp)).toBe(false);
    expect(await esp.list('grub')).toEqual([]);

    await writeGrubMenu(esp);
    // Renamed into place, grub.cfg is a short name: mtools list it as GRUB.CFG.
    expect((await esp.list('grub')).map((n) => n.toLowerCase()).sort()).toEqual(['grub.cfg', 'grubenv']);
    expect(await esp.exists('grub/grub.cfg')).toBe(true);
    await writeBootEntry(esp, 'bootc-default-d2+3.conf', entry('2'));
    expect(await regenerateGrubMenu(esp)).toBe(true);
    const cfg = (await esp.readText('grub/grub.cfg')) ?? '';
    expect(cfg).toContain('set timeout=4');
    expect(cfg).toContain('--id bootc-default-d2');
  });

  it('formats and fills an ESP at an offset, leaving the bytes around it alone', async () => {
    const image = join(tmp, 'disk.img');
    await sparseFile(image, 100 * MiB);
    const marker = Buffer.from('keep me');
    const f = await open(image, 'r+');
    await f.write(marker, 0, marker.length, MiB - marker.length);
    await f.write(marker, 0, marker.length, 65 * MiB);
    await f.close();

    const loc: EspLocation = { image, offsetBytes: MiB };
    await formatEsp(loc, 64 * MiB);
    const esp = espInImage(loc);
    await writeBootEntry(esp, 'bootc-os-a+3.conf', entry('1'));
    expect(await listBootEntries(esp)).toEqual(['bootc-os-a+3.conf']);

    const check = await open(image, 'r');
    const before = Buffer.alloc(marker.length);
    const after = Buffer.alloc(marker.length);
    await check.read(before, 0, marker.length, MiB - marker.length);
    await check.read(after, 0, marker.length, 65 * MiB);
    await check.close();
    expect([before.toString(), after.toString()]).toEqual(['keep me', 'keep me']);
  });

  it('refuses an ESP too small for FAT32', async () => {
    const esp: EspLocation = { image: join(tmp, 'tiny.img'), offsetBytes: 0 };
    await sparseFile(esp.image, 16 * MiB);
    await expect(formatEsp(esp, 16 * MiB)).rejects.toThrow(UserError);
  });
});
