/**
 * `bootc container lint` through the CLI on the fixture images: v1 passes (warnings
 * only), the nokernel image (unpacked with umoci) fails the kernel lint.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { fixturesHint, ociLayoutDir, v1RootfsDir } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { testDir } from '../../support/temp-tree.js';

const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, env: { NO_COLOR: '1' } });

describe.skipIf(explainSkip('privileged', needsRoot() ?? needsFile(v1RootfsDir, fixturesHint)))('bootc container lint on fixture v1', () => {
  it('exits 0 and reports its counts', async () => {
    const r = await cli('container', 'lint', '--rootfs', v1RootfsDir);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Checks passed: \d+$/m);
    expect(r.stdout).toMatch(/^Checks skipped: 1$/m);
    expect(r.stdout).not.toMatch(/Failed lint/);
    // Its initramfs (dracut's, compressed) is read for real, and the tool layer is there.
    expect(r.stdout).not.toMatch(/initramfs-systemd|bootc-tool/);
  });

  it('container inspect shows its kernel and kargs.d', async () => {
    const r = await cli('container', 'inspect', '--rootfs', v1RootfsDir, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { kargs: string[]; kernel: { version: string; unified: boolean } };
    expect(doc.kargs).toContain('console=ttyS0,115200');
    expect(doc.kernel.unified).toBe(false);
    expect(doc.kernel.version).toMatch(/^\d+\.\d+/);
  });
});

describe.skipIf(
  explainSkip('privileged', needsRoot() ?? needsFile(join(ociLayoutDir, 'index.json'), fixturesHint) ?? needsCommands('umoci')),
)('bootc container lint on the nokernel fixture', () => {
  it('fails the kernel lint and exits non-zero', async () => {
    const bundle = join(testDir('lint-nokernel'), 'bundle');
    await execa('umoci', ['unpack', '--image', `${ociLayoutDir}:nokernel`, bundle]);
    const r = await cli('container', 'lint', '--rootfs', join(bundle, 'rootfs'));
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^Failed lint: kernel: No kernel found/m);
    expect(r.stderr).toContain('error: Checks failed: 1');
    // skipping the kernel lint is the way out the hint names
    const skipped = await cli('container', 'lint', '--rootfs', join(bundle, 'rootfs'), '--skip', 'kernel');
    expect(skipped.exitCode, skipped.stdout + skipped.stderr).toBe(0);
  }, 300_000);
});
