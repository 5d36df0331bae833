import { describe, expect, it } from 'vitest';
import type { DiskCandidate } from '../../../src/disk/inventory.js';
import { parseAnswers, renderAnswers } from '../../../src/install/answers.js';
import { answersOf, confirmsErase, renderPlan, splitKargs, type InstallChoices } from '../../../src/tui/choices.js';
import { emptyProgress, foldProgress, formatBytesLine, formatEta } from '../../../src/tui/progress-model.js';
import type { ProgressEvent, StepsEvent } from '../../../src/core/progress.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const disk: DiskCandidate = {
  path: '/dev/sdb',
  sizeBytes: 100 * GiB,
  model: 'WDC WD10EZEX',
  serial: 'WD-1234',
  wwn: null,
  transport: 'sata',
  pttype: 'gpt',
  fstype: null,
  mountpoints: [],
  partitions: [
    { path: '/dev/sdb1', sizeBytes: 512 * MiB, fstype: 'vfat', label: 'EFI', mountpoints: [] },
    { path: '/dev/sdb2', sizeBytes: 99 * GiB, fstype: 'ext4', label: null, mountpoints: [] },
  ],
  refusal: null,
};
const choices: InstallChoices = { source: 'oci:/media/os:v1', disk, filesystem: 'ext4', kargs: ['quiet'], hostname: 'box1' };

describe('renderPlan', () => {
  it('names everything erased and everything created', () => {
    expect(renderPlan(choices)).toEqual([
      'ERASE all of /dev/sdb, 100.0 GiB, WDC WD10EZEX, serial WD-1234, sata:',
      '  /dev/sdb1  512.0 MiB  vfat  "EFI"',
      '  /dev/sdb2  99.0 GiB  ext4',
      '',
      'CREATE a GPT partition table on /dev/sdb:',
      '  1  1.0 GiB  EFI system partition (FAT), systemd-boot',
      '  2  99.0 GiB  root, ext4 (rest of the disk)',
      '',
      'INSTALL oci:/media/os:v1',
      '  kernel arguments: quiet systemd.hostname=box1',
      '  host name: box1',
    ]);
  });

  it('shows a root size and the space left over, and an empty disk as such', () => {
    const lines = renderPlan({ ...choices, disk: { ...disk, partitions: [], pttype: null }, rootSize: '20G', kargs: [], hostname: undefined as never });
    expect(lines).toContain('  (it holds no partitions or filesystems)');
    expect(lines).toContain('  2  20.0 GiB  root, ext4');
    expect(lines).toContain('     79.0 GiB left unpartitioned');
    expect(lines).toContain("  kernel arguments: (the image's own)");
  });

  it('refuses a disk too small for the plan', () => {
    expect(() => renderPlan({ ...choices, disk: { ...disk, sizeBytes: 2 * GiB } })).toThrow(/\/dev\/sdb \(2 GiB\) is too small/);
  });
});

describe('typed confirmation', () => {
  it.each([
    ['/dev/sdb', true],
    ['sdb', true],
    ['yes', true],
    [' yes ', true],
    ['', false],
    ['y', false],
    ['YES', false],
    ['/dev/sda', false],
    ['sd', false],
  ])('%j -> %s', (typed, ok) => {
    expect(confirmsErase(typed, disk)).toBe(ok);
  });
});

describe('answers of the choices', () => {
  it('always wipes and names the disk by its strongest identifier', () => {
    const a = answersOf(choices);
    expect(a).toMatchObject({ source: 'oci:/media/os:v1', disk: { by: 'serial', serial: 'WD-1234' }, wipe: true, kargs: ['quiet'], hostname: 'box1' });
    expect(parseAnswers('a.toml', renderAnswers(a))).toEqual(a);
  });

  it('splits kernel arguments keeping quoted values whole', () => {
    expect(splitKargs('  quiet  console=ttyS0,115200 foo="a b" ')).toEqual(['quiet', 'console=ttyS0,115200', 'foo="a b"']);
    expect(splitKargs('')).toEqual([]);
  });
});

describe('progress model', () => {
  const steps = (done: number): StepsEvent => ({
    type: 'ProgressSteps',
    task: 'install',
    description: 'Installing to disk',
    id: 'i',
    stepsCached: 0,
    steps: done,
    stepsTotal: 3,
    subtasks: ['Checking the disk', 'Pulling image', 'Finalising'].map((d, i) => ({ subtask: d, description: d, id: String(i), completed: i < done })),
  });
  const bytes = (n: number): ProgressEvent => ({
    type: 'ProgressBytes',
    task: 'pulling',
    description: 'Pulling Image: sha256:abcdef0123',
    id: 'd',
    bytesCached: 0,
    bytes: n,
    bytesTotal: 100 * MiB,
    stepsCached: 0,
    steps: 0,
    stepsTotal: 2,
    subtasks: [],
  });

  it('takes the step list from the install task and the detail from inner steps', () => {
    let v = foldProgress(emptyProgress, steps(1), 0);
    expect(v.steps.map((s) => s.completed)).toEqual([true, false, false]);
    v = foldProgress(v, { ...steps(0), task: 'importing', description: 'Importing image: sha256:1', subtasks: [{ subtask: 'layer', description: 'Importing layer 1/2', id: 'a', completed: false }] }, 0);
    expect(v.detail).toBe('Importing layer 1/2');
    expect(v.steps.map((s) => s.completed)).toEqual([true, false, false]);
  });

  it('computes the rate and ETA from the first sample of a task', () => {
    let v = foldProgress(emptyProgress, bytes(10 * MiB), 1000);
    expect(v.bytes).toMatchObject({ rate: null, etaSeconds: null, description: 'Pulling Image' });
    v = foldProgress(v, bytes(30 * MiB), 3000);
    expect(v.bytes!.rate).toBe(10 * MiB);
    expect(v.bytes!.etaSeconds).toBe(7);
    expect(formatBytesLine(v.bytes!)).toBe('Pulling Image: 30.0 MiB / 100.0 MiB, 10.0 MiB/s, ETA 7s');
  });

  it('formats an ETA', () => {
    expect(formatEta(5.4)).toBe('5s');
    expect(formatEta(72)).toBe('1m12s');
    expect(formatEta(3725)).toBe('1h02m');
  });
});
