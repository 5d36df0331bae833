import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import { answerKargs, parseAnswers, renderAnswers, type InstallAnswers } from '../../../src/install/answers.js';
import { localImagePath, matchDisk, parseDiskInventory, selectorFor, type DiskCandidate } from '../../../src/disk/inventory.js';

const LSBLK = join(import.meta.dirname, '../../../fixtures/lsblk');

/** One captured device, renamed so several can sit in one `lsblk -J -b -O` listing. */
function device(file: string, name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const text = readFileSync(join(LSBLK, file), 'utf8').replaceAll('loop0', name);
  const dev = (JSON.parse(text) as { blockdevices: Array<Record<string, unknown>> }).blockdevices[0]!;
  return { ...dev, ...extra };
}
const listing = (...devices: Array<Record<string, unknown>>): string => JSON.stringify({ blockdevices: devices });

const GiB = 1024 ** 3;
const machine = listing(
  device('vda-running-root.json', 'vda'),
  device('loop-empty.json', 'sda', { path: '/dev/sda', type: 'disk', size: 500 * GiB, model: 'Samsung SSD 870', serial: 'S5Y1NX0R', wwn: '0x5002538f4', tran: 'sata', 'maj:min': '8:0' }),
  device('derived-loop-partitioned.json', 'sdb', { path: '/dev/sdb', type: 'disk', size: 1000 * GiB, model: 'WDC WD10EZEX', serial: 'WD-1234', tran: 'sata', 'maj:min': '8:0' }),
  device('derived-loop-partition-mounted.json', 'sdc', { path: '/dev/sdc', type: 'disk', size: 2000 * GiB, model: 'USB Stick', serial: 'USB-1', tran: 'usb', 'maj:min': '8:32' }),
  device('loop-empty.json', 'loop7', { size: 0 }),
  device('loop-empty.json', 'loop3', { size: 8 * GiB, 'maj:min': '7:3' }),
);

describe('parseDiskInventory', () => {
  const disks = parseDiskInventory(machine, '254:1');
  const byPath = (p: string): DiskCandidate => disks.find((d) => d.path === p)!;

  it('lists whole disks and loop devices, not empty loop slots', () => {
    expect(disks.map((d) => d.path)).toEqual(['/dev/vda', '/dev/sda', '/dev/sdb', '/dev/sdc', '/dev/loop3']);
  });

  it('refuses the disk holding the running system and a disk with a mounted partition', () => {
    expect(byPath('/dev/vda').refusal).toMatch(/running system's root filesystem/);
    expect(byPath('/dev/vda').mountpoints).toEqual(['/']);
    expect(byPath('/dev/sdc').refusal).toMatch(/\/dev\/sdcp2 is mounted at \/mnt\/data/);
  });

  it('accepts an empty disk and a partitioned one (the installer erases it)', () => {
    expect(byPath('/dev/sda')).toMatchObject({ refusal: null, model: 'Samsung SSD 870', serial: 'S5Y1NX0R', transport: 'sata', partitions: [] });
    expect(byPath('/dev/sdb').refusal).toBeNull();
    expect(byPath('/dev/sdb').partitions.map((p) => [p.path, p.fstype])).toEqual([
      ['/dev/sdbp1', 'vfat'],
      ['/dev/sdbp2', 'ext4'],
    ]);
  });

  it('refuses the disk the image is read from (the install medium)', () => {
    expect(byPath('/dev/sda').refusal).toBeNull();
    const refused = parseDiskInventory(machine, '254:1', ['8:0']).find((d) => d.path === '/dev/sda')!;
    expect(refused.refusal).toBe('/dev/sda holds the install medium (the image is read from it)');
  });

  it('lists optical drives, always refused: the medium itself, or any other', () => {
    const cd = device('loop-empty.json', 'sr0', { path: '/dev/sr0', type: 'rom', size: 700 * 1024 ** 2, tran: 'sata', 'maj:min': '11:0', ro: true });
    const withCd = parseDiskInventory(listing(cd, device('loop-empty.json', 'vda', { path: '/dev/vda', type: 'disk', size: 8 * GiB, 'maj:min': '254:0' })), null, ['11:0']);
    expect(withCd.map((d) => [d.path, d.refusal])).toEqual([
      ['/dev/sr0', '/dev/sr0 holds the install medium (the image is read from it)'],
      ['/dev/vda', null],
    ]);
    expect(parseDiskInventory(listing(cd), null)[0]!.refusal).toBe('/dev/sr0 is an optical drive: it cannot be installed to');
    expect(() => matchDisk({ by: 'size', size: 'largest' }, withCd.slice(0, 1))).toThrow(/no disk matches the largest disk/);
  });

  it('says so when lsblk output is not JSON', () => {
    expect(() => parseDiskInventory('lsblk: unknown column', null)).toThrow(UserError);
  });
});

describe('matchDisk', () => {
  const disks = parseDiskInventory(machine, '254:1');

  it('matches by serial, wwn, model and path', () => {
    expect(matchDisk({ by: 'serial', serial: 'WD-1234' }, disks).path).toBe('/dev/sdb');
    expect(matchDisk({ by: 'wwn', wwn: '0x5002538f4' }, disks).path).toBe('/dev/sda');
    expect(matchDisk({ by: 'model', model: 'Samsung SSD 870' }, disks).path).toBe('/dev/sda');
    expect(matchDisk({ by: 'path', path: '/dev/loop3' }, disks).path).toBe('/dev/loop3');
  });

  it('matches by size among usable disks only: the mounted 2 TB stick and the running disk are left out', () => {
    expect(matchDisk({ by: 'size', size: 'largest' }, disks).path).toBe('/dev/sdb');
    expect(matchDisk({ by: 'size', size: 'smallest' }, disks).path).toBe('/dev/loop3');
  });

  it('fails clearly when nothing matches, listing the usable disks', () => {
    expect(() => matchDisk({ by: 'serial', serial: 'nope' }, disks)).toThrow('no usable disk matches serial "nope"');
    try {
      matchDisk({ by: 'model', model: 'USB Stick' }, disks);
      expect.unreachable();
    } catch (err) {
      expect((err as UserError).hint).toContain('/dev/sda (500 GiB, Samsung SSD 870, serial S5Y1NX0R)');
    }
  });

  it('refuses a path naming a refused disk, with the reason', () => {
    expect(() => matchDisk({ by: 'path', path: '/dev/vda' }, disks)).toThrow(/cannot install to \/dev\/vda: .*running system/);
  });

  it('refuses an ambiguous match rather than guessing', () => {
    const twins = parseDiskInventory(
      listing(device('loop-empty.json', 'sdx', { path: '/dev/sdx', model: 'Same' }), device('loop-empty.json', 'sdy', { path: '/dev/sdy', model: 'Same' })),
      null,
    );
    expect(() => matchDisk({ by: 'model', model: 'Same' }, twins)).toThrow('2 disks match model "Same"');
    expect(() => matchDisk({ by: 'size', size: 'largest' }, parseDiskInventory(listing(device('vda-running-root.json', 'vda')), null))).toThrow(/every disk is in use/);
  });

  it('saves the strongest identifier: wwn, then serial, then path', () => {
    const byPath = (p: string): DiskCandidate => disks.find((d) => d.path === p)!;
    expect(selectorFor(byPath('/dev/sda'))).toEqual({ by: 'wwn', wwn: '0x5002538f4' });
    expect(selectorFor(byPath('/dev/sdb'))).toEqual({ by: 'serial', serial: 'WD-1234' });
    expect(selectorFor(byPath('/dev/loop3'))).toEqual({ by: 'path', path: '/dev/loop3' });
  });
});

describe('answers file', () => {
  const full: InstallAnswers = {
    source: 'oci:/media/os:v1',
    target: 'quay.io/example/os:latest',
    disk: { by: 'serial', serial: 'WD-1234' },
    wipe: true,
    filesystem: 'xfs',
    rootSize: '20G',
    kargs: ['quiet', 'console=ttyS0,115200'],
    rootSshAuthorizedKeys: '/root/.ssh/id_ed25519.pub',
    hostname: 'box1',
    stateroot: 'default',
    user: { name: 'admin', passwordHash: '$6$salt$hash', groups: ['sudo'] },
  };

  it('round-trips through render and parse', () => {
    expect(parseAnswers('a.toml', renderAnswers(full))).toEqual(full);
    const minimal: InstallAnswers = { source: 'quay.io/x/y', disk: { by: 'size', size: 'largest' }, wipe: false, kargs: [] };
    expect(parseAnswers('a.toml', renderAnswers(minimal))).toEqual(minimal);
    // An installer medium's answers: no image (the medium's own), and what to do after.
    const medium: InstallAnswers = { disk: { by: 'size', size: 'largest' }, wipe: true, kargs: [], finish: 'reboot' };
    expect(parseAnswers('a.toml', renderAnswers(medium))).toEqual(medium);
    expect(renderAnswers(medium)).not.toContain('[image]');
  });

  it('takes finish = "poweroff" or "reboot" only', () => {
    expect(parseAnswers('a.toml', '[disk]\npath = "/dev/vda"\n[options]\nfinish = "poweroff"\n').finish).toBe('poweroff');
    expect(() => parseAnswers('a.toml', '[disk]\npath = "/dev/vda"\n[options]\nfinish = "halt"\n')).toThrow(/`options.finish`/);
  });

  it('renders readable TOML', () => {
    expect(renderAnswers(full)).toBe(
      [
        '# bootc install answers: replay with `bootc install to-disk --config FILE`',
        '',
        '[image]',
        'source = "oci:/media/os:v1"',
        'target = "quay.io/example/os:latest"',
        '',
        '[disk]',
        '# one of: path, serial, wwn, model, size = "largest" | "smallest"',
        'serial = "WD-1234"',
        'wipe = true',
        '',
        '[options]',
        'filesystem = "xfs"',
        'root-size = "20G"',
        'kargs = ["quiet", "console=ttyS0,115200"]',
        'hostname = "box1"',
        'root-ssh-authorized-keys = "/root/.ssh/id_ed25519.pub"',
        'stateroot = "default"',
        'user = "admin"',
        'user-password-hash = "$6$salt$hash"',
        'user-groups = ["sudo"]',
        '',
      ].join('\n'),
    );
  });

  it.each([
    ['[image]\nsource = "x"\n[disk]\n', /\[disk\] needs exactly one of path, serial, wwn, model, size \(it has none\)/],
    ['[image]\nsource = "x"\n[disk]\npath = "/dev/sda"\nserial = "S"\n', /it has path, serial/],
    ['[image]\nsource = "x"\n[disk]\nsize = "biggest"\n', /`disk.size`/],
    ['[image]\nsource = "x"\n[disk]\npath = "/dev/sda"\n[options]\ncolour = "red"\n', /unknown key `options.colour`/],
    ['[image]\nsource = "x"\n[disk]\npath = "/dev/sda"\n[options]\nroot-size = "big"\n', /invalid --root-size "big"/],
    ['[image]\nsource = "x"\n[disk]\npath = "/dev/sda"\n[options]\nhostname = "-bad"\n', /"-bad" is not a valid host name/],
    ['[image\n', /answers.toml is not valid TOML/],
    ['[image]\nsource = "x"\n[disk]\npath = "/dev/sda"\n[options]\nuser = "admin"\n', /user and user-password-hash go together/],
    ['[image]\nsource = "x"\n[disk]\npath = "/dev/sda"\n[options]\nuser = "admin"\nuser-password-hash = "hunter2"\n', /crypt\(3\) hash/],
    ['[image]\nsource = "x"\n[disk]\npath = "/dev/sda"\n[options]\nuser = "Root Admin"\nuser-password-hash = "$6$a$b"\n', /not a valid user name/],
  ])('refuses %j', (text, message) => {
    expect(() => parseAnswers('answers.toml', text)).toThrow(message);
  });

  it('puts the host name on the kernel command line', () => {
    expect(answerKargs({ kargs: ['quiet'], hostname: 'box1' })).toEqual(['quiet', 'systemd.hostname=box1']);
    expect(answerKargs({ kargs: [] })).toEqual([]);
  });

  it('knows which references read a local path', () => {
    expect(localImagePath('oci:/media/os:v1')).toBe('/media/os');
    expect(localImagePath('oci-archive:/media/os.tar')).toBe('/media/os.tar');
    expect(localImagePath('quay.io/x/y:latest')).toBeNull();
  });
});
