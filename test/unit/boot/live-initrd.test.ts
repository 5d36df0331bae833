import { describe, expect, it } from 'vitest';
import { buildLiveInitrd, liveInitrdEntries, liveModuleLoadOrder, liveRootScript, LIVE_KARG } from '../../../src/boot/live-initrd.js';
import { liveKernelArguments, xorrisoArgs, mediumIndexJson, SQUASHFS_PATH, ISO_VOLUME_LABEL } from '../../../src/build-disk/iso-image.js';
import { installerScript, unattendedScript, checkLiveInstallPrograms } from '../../../src/build-disk/live-system.js';
import { testDir } from '../../support/temp-tree.js';

const DEP = [
  'kernel/drivers/scsi/sr_mod.ko: kernel/drivers/cdrom/cdrom.ko',
  'kernel/drivers/cdrom/cdrom.ko:',
  'kernel/fs/isofs/isofs.ko:',
  'kernel/drivers/usb/storage/uas.ko: kernel/drivers/usb/storage/usb-storage.ko',
  'kernel/drivers/usb/storage/usb-storage.ko:',
  'kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko',
  'kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko',
  'kernel/drivers/ata/libata.ko:',
  'kernel/fs/overlayfs/overlay.ko:',
  'kernel/drivers/usb/host/xhci-pci.ko: kernel/drivers/usb/host/xhci-hcd.ko',
  'kernel/drivers/usb/host/xhci-hcd.ko:',
  '',
].join('\n');

describe('live medium modules', () => {
  it('loads dependencies first, each once, skipping built-ins and modules the kernel lacks', () => {
    const order = liveModuleLoadOrder(DEP, 'kernel/fs/squashfs/squashfs.ko\nkernel/drivers/block/loop.ko\n');
    expect(order).toEqual([
      'kernel/drivers/ata/libata.ko',
      'kernel/drivers/ata/libahci.ko',
      'kernel/drivers/ata/ahci.ko',
      'kernel/drivers/usb/host/xhci-hcd.ko',
      'kernel/drivers/usb/host/xhci-pci.ko',
      'kernel/drivers/cdrom/cdrom.ko',
      'kernel/drivers/scsi/sr_mod.ko',
      'kernel/drivers/usb/storage/usb-storage.ko',
      'kernel/drivers/usb/storage/uas.ko',
      'kernel/fs/isofs/isofs.ko',
      'kernel/fs/overlayfs/overlay.ko',
    ]);
  });

  it('puts the modules, their load order and both units in the addon', () => {
    const entries = liveInitrdEntries([{ path: 'kernel/fs/isofs/isofs.ko', content: new Uint8Array([1, 2]) }]);
    const paths = entries.map((e) => e.path);
    expect(paths).toContain('usr/lib/bootc/live/modules/isofs.ko');
    expect(entries.find((e) => e.path === 'usr/lib/bootc/live/modules/load-order')).toMatchObject({ content: 'isofs.ko\n' });
    expect(paths).toContain('etc/systemd/system/sysinit.target.wants/bootc-live-modules.service');
    expect(paths).toContain('etc/systemd/system/initrd-root-fs.target.wants/bootc-live-root.service');
    // Parents before children, as the kernel unpacks them.
    for (const [i, e] of entries.entries()) {
      const parent = e.path.split('/').slice(0, -1).join('/');
      if (parent !== '') expect(paths.indexOf(parent)).toBeLessThan(i);
    }
    expect(buildLiveInitrd([]).byteLength % 4).toBe(0);
  });

  it('mounts the squashfs the kernel argument names, under an overlay, on top of the medium', () => {
    const script = liveRootScript();
    expect(script).toContain(`${LIVE_KARG}=*) image=`);
    expect(script).toMatch(/mount -t squashfs -o ro,loop "\$medium\$image"/);
    expect(script).toMatch(/mount -t overlay .* bootc-live \/sysroot/);
    expect(script).toContain('mount --bind /sysroot "$medium"');
  });
});

describe('the ISO image', () => {
  it('names the medium by its label and the squashfs on it before the live kargs', () => {
    expect(liveKernelArguments(['console=ttyS0'])).toEqual([`root=LABEL=${ISO_VOLUME_LABEL}`, 'ro', `${LIVE_KARG}=${SQUASHFS_PATH}`, 'console=ttyS0']);
  });

  it('asks xorriso for a hybrid image: El Torito EFI and a GPT ESP on the same FAT, grafted files escaped', () => {
    const args = xorrisoArgs('/out/x.iso', '/w/efiboot.img', [{ isoPath: '/bootc/image/blobs/sha256/ab', hostPath: '/store/a=b' }]);
    expect(args.slice(0, 3)).toEqual(['xorriso', '-as', 'mkisofs']);
    expect(args).toEqual(expect.arrayContaining(['-append_partition', '2', '0xef', '/w/efiboot.img', '-appended_part_as_gpt', '-no-emul-boot']));
    expect(args[args.indexOf('-e') + 1]).toBe('--interval:appended_partition_2:all::');
    expect(args.at(-1)).toBe('/bootc/image/blobs/sha256/ab=/store/a\\=b');
  });

  it('writes an index.json with the one manifest, named', () => {
    const index = JSON.parse(mediumIndexJson({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:ab', size: 12 }, 'v1')) as {
      manifests: Array<Record<string, unknown>>;
    };
    expect(index.manifests).toEqual([
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:ab', size: 12, annotations: { 'org.opencontainers.image.ref.name': 'v1' } },
    ]);
  });
});

describe('the live installer', () => {
  const settings = { source: 'oci:/run/bootc/medium/bootc/image', target: "quay.io/x/os:it's" };

  it('starts the installer with the medium image and its target, quoted for sh', () => {
    const script = installerScript(settings);
    expect(script).toContain(`/usr/bin/bootc install --source-imgref oci:/run/bootc/medium/bootc/image --target-imgref 'quay.io/x/os:it'\\''s'`);
    expect(script).toMatch(/s \| S\) .*\/bin\/bash -l/);
  });

  it('unattended: the medium image unless the answers name one; powers off unless they say', () => {
    const own = unattendedScript({ ...settings, answers: { text: '', namesImage: false, finish: undefined } });
    expect(own).toContain('install to-disk --config /etc/bootc/live/answers.toml --source-imgref');
    expect(own).toContain('systemctl poweroff');
    const named = unattendedScript({ ...settings, answers: { text: '', namesImage: true, finish: 'reboot' } });
    expect(named).not.toContain('--source-imgref');
    expect(named).not.toContain('systemctl poweroff');
  });

  it('refuses an image that lacks what the installer runs, naming the packages', () => {
    const present = ['mkfs.ext4', 'wipefs', 'blockdev', 'lsblk', 'blkid', 'mount', 'udevadm'];
    const root = testDir('live-root', { files: Object.fromEntries(present.map((p) => [`usr/sbin/${p}`, ''])) });
    expect(() => checkLiveInstallPrograms(root)).toThrow(/has no sfdisk, mkfs.fat, mcopy/);
    try {
      checkLiveInstallPrograms(root);
    } catch (err) {
      expect((err as { hint?: string }).hint).toContain('apt-get install fdisk dosfstools mtools');
    }
  });
});
