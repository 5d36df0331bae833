import { mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import {
  PREPARE_ROOT_SCRIPT_PATH,
  PREPARE_ROOT_UNIT_NAME,
  buildAddonInitrd,
  initrdPaddingBytes,
  prepareRootScript,
  prepareRootUnit,
  writeCombinedInitrd,
} from '../../../src/boot/prepare-root.js';
import { explainSkip, needsCommands } from '../../support/tier.js';
import { testDir } from '../../support/temp-tree.js';

describe('prepare-root unit and script (pure)', () => {
  it('orders the unit between sysroot.mount and initrd-root-fs.target, only for bootc boots', () => {
    const unit = prepareRootUnit();
    for (const line of [
      'After=sysroot.mount',
      'Before=initrd-root-fs.target',
      'ConditionKernelCommandLine=|bootc.deploy',
      'ConditionKernelCommandLine=|bootc.deploy-selector',
      'DefaultDependencies=no',
      `ExecStart=/bin/sh ${PREPARE_ROOT_SCRIPT_PATH}`,
    ]) {
      expect(unit.split('\n')).toContain(line);
    }
  });

  it('is valid sh', async () => {
    const dir = testDir('prepare-root');
    writeFileSync(join(dir, 's.sh'), prepareRootScript());
    await run({ description: 'Checking the script syntax', argv: ['sh', '-n', join(dir, 's.sh')] });
  });

  it('pads the image initramfs to a 4-byte boundary', () => {
    expect([0, 1, 2, 3, 4, 5].map(initrdPaddingBytes)).toEqual([0, 3, 2, 1, 0, 3]);
  });
});

/**
 * The script runs against a fake /proc/cmdline and a `mount` that records its arguments:
 * what it would do, without root. (The real thing is shown by the qemu boot test.)
 */
describe('prepare-root script behaviour', () => {
  let dir: string;
  beforeEach(() => {
    dir = testDir('prepare-root');
  });

  async function runScript(cmdline: string, makeDeployment: boolean) {
    const sysroot = join(dir, 'sysroot');
    if (makeDeployment) {
      await run({
        description: 'Making a fake sysroot',
        argv: ['mkdir', '-p', join(sysroot, 'bootc/deploy/os/d1/usr'), join(sysroot, 'bootc/state/os/var')],
      });
    }
    writeFileSync(join(dir, 'cmdline'), cmdline + '\n');
    writeFileSync(join(dir, 'mount'), `#!/bin/sh\necho "mount $*" >> '${dir}/mounts'\n`, { mode: 0o755 });
    // Point the absolute paths of the real script at the temp dir.
    const script = prepareRootScript()
      .replaceAll('/proc/cmdline', join(dir, 'cmdline'))
      .replaceAll('physical=/sysroot', `physical=${sysroot}`)
      .replaceAll('/dev/kmsg', '/dev/null')
      .replaceAll('/run/bootc', join(dir, 'run'));
    writeFileSync(join(dir, 'script.sh'), script);
    return run({
      description: 'Running prepare-root',
      argv: ['sh', join(dir, 'script.sh')],
      env: { PATH: `${dir}:${process.env['PATH'] ?? ''}` },
      okExitCodes: [1],
    });
  }

  it('binds the deployment, /var, /usr read-only and the physical root, then moves it', async () => {
    const r = await runScript('BOOT_IMAGE=/x root=UUID=1 rw bootc.deploy=os/d1 quiet', true);
    expect(r.exitCode).toBe(0);
    const s = join(dir, 'sysroot');
    const d = `${s}/bootc/deploy/os/d1`;
    expect(readFileSync(join(dir, 'mounts'), 'utf8').trim().split('\n')).toEqual([
      `mount --make-rprivate ${s}`,
      `mount --bind ${d} ${d}`,
      `mount --rbind ${s} ${d}/sysroot`,
      `mount --bind ${s}/bootc/state/os/var ${d}/var`,
      `mount --bind ${d}/usr ${d}/usr`,
      `mount -o remount,bind,ro ${d}/usr`,
      `mount --move ${d} ${s}`,
    ]);
    expect(statSync(`${d}/sysroot`).isDirectory()).toBe(true);
  });

  it('fails loudly, mounting nothing, when the deployment is missing', async () => {
    const r = await runScript('root=UUID=1 bootc.deploy=os/gone', false);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('deployment os/gone not found');
    expect(() => readFileSync(join(dir, 'mounts'))).toThrow();
  });

  const SELECTOR = 'ab'.repeat(32);

  it('finds the deployment of a sealed UKI through its selector record', async () => {
    const s = join(dir, 'sysroot');
    mkdirSync(join(s, 'bootc/selectors'), { recursive: true });
    writeFileSync(join(s, 'bootc/selectors', SELECTOR), 'os/d1\n');
    const r = await runScript(`root=UUID=1 rw bootc.deploy-selector=${SELECTOR}`, true);
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(dir, 'mounts'), 'utf8')).toContain(`mount --move ${s}/bootc/deploy/os/d1 ${s}`);
    expect(readFileSync(join(dir, 'run', 'booted-deployment'), 'utf8')).toBe('os/d1\n');
  });

  it('refuses a selector no deployment has, mounting nothing', async () => {
    const r = await runScript(`root=UUID=1 bootc.deploy-selector=${SELECTOR}`, true);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('no deployment has the /usr tree of this UKI');
    expect(() => readFileSync(join(dir, 'mounts'))).toThrow();
  });

  it('refuses a malformed selector', async () => {
    const r = await runScript('root=UUID=1 bootc.deploy-selector=../../etc', true);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('malformed bootc.deploy-selector=');
  });

  it.each(['bootc.deploy=', 'bootc.deploy=a/b/c', 'bootc.deploy=../x', 'bootc.deploy=nostateroot'])(
    'refuses %s',
    async (karg) => {
      const r = await runScript(`root=UUID=1 ${karg}`, true);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/bootc-prepare-root: (malformed|no bootc.deploy)/);
    },
  );
});

describe.skipIf(explainSkip('unit', needsCommands('cpio')))('addon initrd and the combined file', () => {
  let dir: string;
  beforeEach(() => {
    dir = testDir('addon-initrd');
  });

  it('holds the unit, its wants-link and the executable script', async () => {
    writeFileSync(join(dir, 'addon.cpio'), buildAddonInitrd());
    await run({ description: 'Extracting', argv: ['sh', '-c', `mkdir x && cd x && cpio -id < ../addon.cpio`], cwd: dir });
    const unitDir = join(dir, 'x/etc/systemd/system');
    expect(readFileSync(join(unitDir, PREPARE_ROOT_UNIT_NAME), 'utf8')).toBe(prepareRootUnit());
    expect(readlinkSync(join(unitDir, 'initrd-root-fs.target.wants', PREPARE_ROOT_UNIT_NAME))).toBe(
      `../${PREPARE_ROOT_UNIT_NAME}`,
    );
    const script = join(dir, 'x', PREPARE_ROOT_SCRIPT_PATH);
    expect(readFileSync(script, 'utf8')).toBe(prepareRootScript());
    expect(statSync(script).mode & 0o111).toBe(0o111);
  });

  it('concatenates: image initramfs, zero padding to 4 bytes, the addon', async () => {
    const image = Buffer.from('not-really-an-initramfs'); // 23 bytes: 1 byte of padding
    writeFileSync(join(dir, 'initramfs.img'), image);
    await writeCombinedInitrd(join(dir, 'initramfs.img'), join(dir, 'initrd'));
    const combined = readFileSync(join(dir, 'initrd'));
    expect(combined.subarray(0, 23).equals(image)).toBe(true);
    expect(combined[23]).toBe(0);
    expect(combined.subarray(24).equals(Buffer.from(buildAddonInitrd()))).toBe(true);
  });
});
