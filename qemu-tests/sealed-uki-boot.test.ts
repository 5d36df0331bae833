/**
 * qemu tier: an image that ships its own (sealed) UKI boots it as it is. The image is
 * fixture:v1 plus one layer holding `/usr/lib/modules/<kver>/<kver>.efi`, built with
 * `bootc container ukify --rootfs <v1>` as an image build would; its command line names
 * the deployment only through `bootc.deploy-selector=`. `build-disk` (no --uki) sees the
 * UKI, installs it unchanged and records the selector; prepare-root in the initrd finds
 * the deployment from it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../test/support/tier.js';
import { fixturesHint, fixturesIndexPath, ociLayoutDir, readFixturesIndex, v1RootfsDir } from '../fixtures/paths.js';
import { selectorOfDirectory } from '../src/uki/selector.js';
import { diskImageOutputPath } from '../src/build-disk/disk-image.js';
import { tarOf } from '../test/privileged/oci/layout-builder.js';
import { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm, type Vm } from './harness.js';
import { suiteDir } from '../test/support/temp-tree.js';

const skip = explainSkip(
  'qemu',
  needsRoot() ??
    needsCommands(QEMU, 'setpriv', 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'qemu-img') ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(fixturesIndexPath, fixturesHint) ??
    needsFile(v1RootfsDir, fixturesHint),
);

const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, all: true });
const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** A copy of the fixture layout with tag `sealed` = v1 + one uncompressed layer holding `files`. */
async function layoutWithLayer(dir: string, files: Record<string, Buffer>): Promise<string> {
  await execa('cp', ['-a', ociLayoutDir, dir]);
  const blob = (digest: string): string => join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const v1 = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'v1')!;
  const manifest = JSON.parse(readFileSync(blob(v1.digest), 'utf8')) as { config: Descriptor; layers: Descriptor[] };
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as {
    rootfs: { diff_ids: string[] };
    history?: unknown[];
  };
  const tar = await tarOf(files);
  const layerDigest = sha256(tar);
  writeFileSync(blob(layerDigest), tar);
  config.rootfs.diff_ids.push(layerDigest);
  config.history?.push({ created_by: 'bootc container ukify (test)' });
  const configBytes = Buffer.from(JSON.stringify(config));
  writeFileSync(blob(sha256(configBytes)), configBytes);
  const newManifest = {
    ...manifest,
    config: { ...manifest.config, digest: sha256(configBytes), size: configBytes.length },
    layers: [...manifest.layers, { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: tar.length }],
  };
  const manifestBytes = Buffer.from(JSON.stringify(newManifest));
  writeFileSync(blob(sha256(manifestBytes)), manifestBytes);
  index.manifests.push({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: sha256(manifestBytes),
    size: manifestBytes.length,
    annotations: { 'org.opencontainers.image.ref.name': 'sealed' },
  });
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  return sha256(manifestBytes);
}

describe.skipIf(skip)('an image with a sealed UKI boots it through the deployment selector', () => {
  let tmp: string;
  let vm: Vm | undefined;
  let selector: string;
  let deployment: string;

  const scratch = suiteDir('sealed-uki');
  beforeAll(async () => {
    tmp = scratch.path;
    const kver = readFixturesIndex().kernelVersion;
    const uki = join(tmp, 'sealed.efi');
    // Our disks name the root partition "root"; the UKI cannot know its UUID.
    const ukify = await cli('container', 'ukify', '--rootfs', v1RootfsDir, '--karg', 'root=PARTLABEL=root', '--output', uki);
    if (ukify.exitCode !== 0) throw new Error(`ukify failed:\n${ukify.all}`);
    selector = await selectorOfDirectory(v1RootfsDir);
    const layout = join(tmp, 'oci');
    const digest = await layoutWithLayer(layout, { [`usr/lib/modules/${kver}/${kver}.efi`]: readFileSync(uki) });
    const output = join(tmp, 'out');
    mkdirSync(output);
    const r = await cli('image', 'build-disk', `oci:${layout}:sealed`, '--type', 'raw', '--output', output,
      '--store', join(tmp, 'store'), '--work-dir', tmp, '--quiet');
    if (r.exitCode !== 0) throw new Error(`build-disk failed:\n${r.all}`);
    deployment = /Deployment: (\S+)/.exec(r.all ?? '')?.[1] ?? '';
    expect(deployment).toBe(`default/${digest.slice(7, 19)}.0`);
    vm = await startVm({ name: 'sealed-uki', boot: { kind: 'uefi' }, disks: [{ path: diskImageOutputPath(output, 'raw'), format: 'raw' }] });
    await vm.waitForLogin();
  });

  afterAll(async () => {
    await vm?.dispose();
  });

  it('booted the sealed UKI: its command line has the selector and no deployment id', async () => {
    const cmdline = (await vm!.runOk('cat /proc/cmdline')).split(/\s+/);
    expect(cmdline).toContain(`bootc.deploy-selector=${selector}`);
    expect(cmdline.some((w) => w.startsWith('bootc.deploy='))).toBe(false);
  });

  it('made the selected deployment the root, and told the booted system which one', async () => {
    expect(await vm!.runOk('findmnt -n -o FSROOT /')).toBe(`/bootc/deploy/${deployment}`);
    expect(await vm!.runOk('cat /run/bootc/booted-deployment')).toBe(deployment);
    expect(await vm!.runOk(`cat /sysroot/bootc/selectors/${selector}`)).toBe(deployment);
    expect(await vm!.runOk('findmnt -n -o OPTIONS /usr')).toMatch(/^ro,/);
  });

  it('marks the boot good: the UKI loses its boot counter', async () => {
    await vm!.runOk('systemctl is-system-running --wait >/dev/null || true', 180_000);
    expect(await vm!.runOk('systemctl is-active bootc-boot-complete.service')).toBe('active');
    expect(await vm!.runOk('ls /boot/EFI/Linux')).toBe(`bootc-${deployment.replace('/', '-')}.efi`);
  }, 240_000);
});
