/**
 * UKIs on a real ESP and real deployments of fixture:v1:
 *
 * - `bootc image build-disk --uki --sign-key --sign-cert`: one UKI in EFI/Linux/ with boot
 *   counting, no Type #1 entry; objdump and sbverify read it; systemd-boot signed too; the
 *   `.osrel` carries our sort key and boot order
 * - garbage collection of stale UKIs on that ESP (mtools) and on a mounted-style directory
 * - the deployment selector computed from the store's tree index, from the checked-out
 *   deployment and from the unpacked rootfs agree
 * - a sealed UKI in the image is installed as it is and its selector recorded; one that
 *   names no selector is refused
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, readFixturesIndex, v1RootfsDir } from '../../../fixtures/paths.js';
import { parseOsRelease } from '../../../src/boot/bls.js';
import { prepareDeploymentBoot } from '../../../src/boot/deployment-boot.js';
import { espInDirectory, espInImage, listUkis, removeStaleUkis, type EspLocation } from '../../../src/boot/esp.js';
import { UserError, unwrapContext } from '../../../src/core/errors.js';
import { createDeployment, importImage, type Deployment } from '../../../src/deploy/deploy.js';
import { deploymentId } from '../../../src/deploy/paths.js';
import { SELECTORS_DIR, selectorOfDirectory, selectorOfTree } from '../../../src/uki/selector.js';
import { diskImageOutputPath } from '../../../src/build-disk/disk-image.js';
import { readUkisInDir, setUkiBootOrder } from '../../../src/boot/uki-boot-dir.js';
import { pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import { objectPath, storeLayout } from '../../../src/store/layout.js';
import { parsePe, sectionData } from '../../../src/uki/pe.js';
import { buildTreeUki } from '../../../src/boot/tree-uki.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { suiteDir } from '../../support/temp-tree.js';

const SNAKEOIL_KEY = '/usr/share/ovmf/PkKek-1-snakeoil.key';
const SNAKEOIL_CERT = '/usr/share/ovmf/PkKek-1-snakeoil.pem';
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

const skip = explainSkip(
  'privileged',
  needsRoot() ??
    needsCommands('objdump', 'sbverify', 'sbsign', 'openssl', 'sfdisk', 'mkfs.fat', 'mcopy', 'mkfs.ext4') ??
    needsFile(SNAKEOIL_KEY, 'apt-get install ovmf') ??
    needsFile(fixturesIndexPath, fixturesHint) ??
    needsFile(v1RootfsDir, fixturesHint),
);

function espOffset(raw: string): number {
  const table = JSON.parse(execFileSync('sfdisk', ['--json', raw], { encoding: 'utf8' })) as {
    partitiontable: { partitions: Array<{ start: number; type: string }> };
  };
  const esp = table.partitiontable.partitions.find((p) => p.type.toUpperCase() === 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
  if (!esp) throw new Error(`${raw} has no ESP`);
  return esp.start * 512;
}

describe.skipIf(skip)('build-disk --uki with Secure Boot signing', () => {
  let tmp: string;
  let esp: EspLocation;
  let id: string;
  let key: string;
  const fromEsp = (path: string, out: string): string => {
    execFileSync('mcopy', ['-n', '-i', `${esp.image}@@${esp.offsetBytes}`, `::/${path}`, out], { env: MTOOLS_ENV });
    return out;
  };

  const scratch = suiteDir('uki-disk');
  beforeAll(async () => {
    tmp = scratch.path;
    id = deploymentId(readFixturesIndex().tags.v1.manifestDigest, 0);
    key = join(tmp, 'snakeoil.key');
    execFileSync('openssl', ['pkey', '-in', SNAKEOIL_KEY, '-passin', 'pass:snakeoil', '-out', key]);
    const output = join(tmp, 'out');
    const r = await execa(
      'node',
      ['--import', 'tsx', 'src/cli.ts', 'image', 'build-disk', ociLayoutRef('v1'), '--type', 'raw', '--uki',
        '--sign-key', key, '--sign-cert', SNAKEOIL_CERT, '--output', output, '--store', join(tmp, 'store'), '--work-dir', tmp, '--quiet'],
      { reject: false, all: true },
    );
    if (r.exitCode !== 0) throw new Error(`build-disk --uki failed:\n${r.all}`);
    const raw = diskImageOutputPath(output, 'raw');
    esp = { image: raw, offsetBytes: espOffset(raw) };
  });

  it('writes one UKI with a boot counter in EFI/Linux/ and no Type #1 entry', async () => {
    expect(await listUkis(espInImage(esp))).toEqual([`bootc-default-${id}+3.efi`]);
    const entries = spawnSync('mdir', ['-b', '-i', `${esp.image}@@${esp.offsetBytes}`, '::/loader/entries'], { env: MTOOLS_ENV, encoding: 'utf8' });
    expect(entries.stdout.trim()).toBe('');
  });

  it('objdump -h reads the UKI; sbverify accepts it and systemd-boot against the signing certificate', () => {
    const uki = fromEsp(`EFI/Linux/bootc-default-${id}+3.efi`, join(tmp, 'uki.efi'));
    const listing = execFileSync('objdump', ['-h', uki], { encoding: 'utf8' });
    for (const name of ['.osrel', '.cmdline', '.uname', '.initrd', '.linux']) expect(listing).toContain(` ${name} `);
    expect(spawnSync('sbverify', ['--cert', SNAKEOIL_CERT, uki]).status).toBe(0);
    for (const loader of ['EFI/BOOT/BOOTX64.EFI', 'EFI/systemd/systemd-bootx64.efi']) {
      const copy = fromEsp(loader, join(tmp, 'loader.efi'));
      expect(spawnSync('sbverify', ['--cert', SNAKEOIL_CERT, copy]).status, loader).toBe(0);
    }
  });

  it('carries the command line with bootc.deploy= and an .osrel that orders it first', () => {
    const uki = join(tmp, 'uki.efi');
    const bytes = readFileSync(uki);
    const pe = parsePe(bytes, uki);
    const text = (name: string): string => Buffer.from(sectionData(bytes, pe.sections.find((s) => s.name === name)!)).toString('utf8');
    expect(text('.cmdline').split(' ')).toEqual(expect.arrayContaining(['rw', 'console=ttyS0,115200', `bootc.deploy=default/${id}`]));
    const osrel = parseOsRelease(text('.osrel'));
    expect(osrel).toMatchObject({ IMAGE_ID: 'bootc', IMAGE_VERSION: '1', ID: 'debian' });
  });

  it('reorders the signed UKI for a rollback and signs it again; sbverify still accepts it', async () => {
    const boot = join(tmp, 'reorder');
    mkdirSync(join(boot, 'EFI/Linux'), { recursive: true });
    const name = `bootc-default-${id}+3.efi`;
    fromEsp(`EFI/Linux/${name}`, join(boot, 'EFI/Linux', name));
    await setUkiBootOrder(boot, name, 7, { key, cert: SNAKEOIL_CERT });
    const path = join(boot, 'EFI/Linux', name);
    expect(spawnSync('sbverify', ['--cert', SNAKEOIL_CERT, path]).status).toBe(0);
    expect((await readUkisInDir(boot)).map((u) => u.version)).toEqual(['7']);
  });

  it('garbage-collects UKIs of deployments that are gone, on the ESP and in a mounted ESP', async () => {
    const name = `bootc-default-${id}+3.efi`;
    expect(await removeStaleUkis(espInImage(esp), [{ stateroot: 'default', deploymentId: id }])).toEqual([]);
    expect(await listUkis(espInImage(esp))).toEqual([name]);
    expect(await removeStaleUkis(espInImage(esp), [])).toEqual([name]);
    expect(await listUkis(espInImage(esp))).toEqual([]);

    const boot = join(tmp, 'boot');
    mkdirSync(join(boot, 'EFI/Linux'), { recursive: true });
    for (const n of ['bootc-default-a.0+2-1.efi', 'bootc-default-b.0.efi', 'bootc-default-c.0.efi.tmp-4242-0123456789ab', 'other.efi']) {
      writeFileSync(join(boot, 'EFI/Linux', n), 'x');
    }
    expect((await removeStaleUkis(espInDirectory(boot), [{ stateroot: 'default', deploymentId: 'b.0' }])).sort()).toEqual([
      'bootc-default-a.0+2-1.efi',
      'bootc-default-c.0.efi.tmp-4242-0123456789ab',
    ]);
    expect(execFileSync('ls', [join(boot, 'EFI/Linux')], { encoding: 'utf8' }).trim().split('\n')).toEqual(['bootc-default-b.0.efi', 'other.efi']);
  });
});

describe.skipIf(skip)('the deployment selector and sealed UKIs, on fixture:v1', () => {
  let tmp: string;
  let root: string;
  let deployment: Deployment;
  let fromTree: string;

  const scratch = suiteDir('uki-sealed');
  beforeAll(async () => {
    tmp = scratch.path;
    root = join(tmp, 'root');
    mkdirSync(root);
    const pulled = await pullImage(parseReference(ociLayoutRef('v1')), { cacheDir: join(tmp, 'store') });
    const imported = await importImage(root, pulled);
    fromTree = await selectorOfTree(imported.tree.entries, (object) => objectPath(storeLayout(root), object));
    deployment = await createDeployment(root, imported, 'fixture:v1', {
      stateroot: 'default',
      targetImage: { image: 'fixture:v1', transport: 'registry' },
      kargs: [],
      architecture: 'amd64',
    });
  });

  it('is the same from the store tree, the deployment and the unpacked image (what ukify reads)', async () => {
    expect(fromTree).toMatch(/^[0-9a-f]{64}$/);
    expect(await selectorOfDirectory(deployment.dir)).toBe(fromTree);
    expect(await selectorOfDirectory(v1RootfsDir)).toBe(fromTree);
  }, 300_000);

  const bootOptions = () => ({
    deploymentDir: deployment.dir,
    stateroot: 'default',
    deploymentId: deployment.id,
    rootFsUuid: '11111111-2222-3333-4444-555555555555',
    bootOrder: 1,
    uki: {},
  });

  it('installs a sealed UKI as it is and records which deployment its selector names', async () => {
    const kver = readFixturesIndex().kernelVersion;
    const sealed = join(deployment.dir, 'usr/lib/modules', kver, `${kver}.efi`);
    const r = await execa('node', ['--import', 'tsx', 'src/cli.ts', 'container', 'ukify', '--rootfs', deployment.dir, '--output', sealed], { reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    const work = join(tmp, 'work');
    mkdirSync(work);
    const boot = await prepareDeploymentBoot(bootOptions(), work);
    expect(boot.kind).toBe('uki');
    if (boot.kind !== 'uki') return;
    expect(boot.sealed).toBe(true);
    expect(boot.selector).toBe(fromTree);
    expect(boot.files[0]).toEqual({ path: `EFI/Linux/bootc-default-${deployment.id}+3.efi`, hostPath: sealed });
    expect(boot.kernelArguments).toContain(`bootc.deploy-selector=${fromTree}`);
    expect(readFileSync(join(root, SELECTORS_DIR, fromTree), 'utf8')).toBe(`default/${deployment.id}\n`);
    rmSync(sealed);
  }, 300_000);

  it('refuses a sealed UKI whose command line names no selector', async () => {
    const kver = readFixturesIndex().kernelVersion;
    const sealed = join(deployment.dir, 'usr/lib/modules', kver, `${kver}.efi`);
    await buildTreeUki({ rootfs: deployment.dir, cmdline: 'rw quiet', output: sealed });
    const work = join(tmp, 'work2');
    mkdirSync(work);
    const err = await prepareDeploymentBoot(bootOptions(), work).catch((e: unknown) => e);
    const { root: cause } = unwrapContext(err);
    expect(cause).toBeInstanceOf(UserError);
    expect((cause as UserError).message).toContain('has no bootc.deploy-selector=');
    rmSync(sealed);
  }, 300_000);
});
