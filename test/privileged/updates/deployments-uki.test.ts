/**
 * Updates of a system that boots UKIs, for real on fixture:v1 → v2 → v3 from the OCI layout,
 * with a sysroot and an ESP made of directories (privileged tier: root for the checkout's
 * ownership; skipped with a reason when the fixtures are missing): upgrade stages a
 * `.staged` UKI, finalisation renames it and orders it first, rollback rewrites the order
 * inside the UKIs, and the next finalisation removes the old deployment's UKI.
 */
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError, unwrapContext } from '../../../src/core/errors.js';
import { prepareDeploymentBoot } from '../../../src/boot/deployment-boot.js';
import { readUkisInDir, setUkiBootOrder } from '../../../src/boot/uki-boot-dir.js';
import { createDeployment, importImage, type Deployment } from '../../../src/deploy/deploy.js';
import { pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import { loadDeployments, type SysrootLocations } from '../../../src/updates/deployments.js';
import { finalizeStaged } from '../../../src/updates/finalize.js';
import { rollback } from '../../../src/updates/rollback.js';
import { upgrade } from '../../../src/updates/upgrade.js';
import { fixturesHint, fixturesIndexPath, ociLayoutDir, ociLayoutRef } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { testDir, suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('zstd', 'cpio') ?? needsFile(fixturesIndexPath, fixturesHint));

describe.skipIf(skip)('UKI upgrade v1 → v2, rollback, switch to v3 on a directory sysroot', () => {
  let dir = '';
  let loc: SysrootLocations;
  let store = '';
  let booted: Deployment;
  let v1Uki = '';

  const ukiDir = (): string => join(loc.boot, 'EFI/Linux');
  const bootAs = (id: string): Promise<void> => writeFile(loc.cmdlinePath, `root=UUID=1234-root ro bootc.deploy=default/${id}\n`);
  const ukiOrder = async (): Promise<Array<[string, string | null]>> => {
    const view = await loadDeployments(loc);
    return view.order.map((e) => [e.name.deploymentId, e.version]);
  };

  const scratch = suiteDir('uki-upgrade', { under: DISK_TMP });
  beforeAll(async () => {
    dir = scratch.path;
    loc = { sysroot: join(dir, 'sysroot'), boot: join(dir, 'boot'), cmdlinePath: join(dir, 'cmdline'), bootedRecordPath: join(dir, 'booted-deployment') };
    store = join(dir, 'store');
    await mkdir(loc.sysroot);
    await mkdir(join(loc.boot, 'EFI/Linux'), { recursive: true });
    const pulled = await pullImage(parseReference(ociLayoutRef('v1')), { cacheDir: store });
    const imported = await importImage(loc.sysroot, pulled);
    booted = await createDeployment(loc.sysroot, imported, 'fixture:v1', {
      stateroot: 'default',
      targetImage: { image: `${ociLayoutDir}:v2`, transport: 'oci' },
      kargs: ['quiet'],
      architecture: 'amd64',
      bootType: 'uki',
    });
    // What install --uki leaves: the deployment's UKI with boot order 1.
    const work = join(dir, 'work');
    await mkdir(work);
    const boot = await prepareDeploymentBoot(
      { deploymentDir: booted.dir, stateroot: 'default', deploymentId: booted.id, rootFsUuid: '1234-root', bootOrder: 1, uki: {} },
      work,
    );
    if (boot.kind !== 'uki') throw new Error('expected a UKI');
    v1Uki = boot.ukiFileName;
    await copyFile(boot.files[0].hostPath, join(ukiDir(), v1Uki));
    await bootAs(booted.id);
  }, 300_000);

  it('stages a .staged UKI, finalises it as the default; rollback reorders inside the UKIs; the next finalisation removes the oldest UKI', async () => {
    const rebootRequiredPath = join(dir, 'reboot-required');
    const outcome = await upgrade({ storeDir: store, locations: loc, rebootRequiredPath });
    expect(outcome.kind).toBe('staged');
    const v2 = outcome.kind === 'staged' ? outcome.stagedId : '';

    let view = await loadDeployments(loc);
    expect(view.staged?.origin.bootType).toBe('uki');
    expect(view.stagedRecord).toEqual({ kind: 'uki', stateroot: 'default', id: v2, ukiFileName: `bootc-default-${v2}+3.efi` });
    // systemd-boot lists only *.efi: the menu still has v1 alone, and no Type #1 files were written.
    expect((await readdir(ukiDir())).sort()).toEqual([v1Uki, `bootc-default-${v2}+3.efi.staged`].sort());
    expect(await readdir(loc.boot)).not.toContain('bootc');
    expect(await ukiOrder()).toEqual([[booted.id, '1']]);

    const finalized = await finalizeStaged({ locations: loc, liveEtc: join(booted.dir, 'etc') });
    expect(finalized).toMatchObject({ kind: 'finalized', id: v2, entryFileName: `bootc-default-${v2}+3.efi` });
    expect((await readdir(ukiDir())).sort()).toEqual([v1Uki, `bootc-default-${v2}+3.efi`].sort());
    expect(await ukiOrder()).toEqual([
      [v2, '2'],
      [booted.id, '1'],
    ]);
    // The UKI's command line was built for the running system's root and its own deployment.
    const ukis = await readUkisInDir(loc.boot);
    expect(ukis.find((u) => u.name.deploymentId === v2)?.title).toContain('2');

    // Booted into v2: rollback puts v1 first by rewriting its .osrel; again, v2 comes back.
    await bootAs(v2);
    view = await loadDeployments(loc);
    expect(view.rollback?.ref.id).toBe(booted.id);
    expect((await rollback({ locations: loc })).nextBoot).toBe('rollback');
    expect(await ukiOrder()).toEqual([
      [booted.id, '3'],
      [v2, '2'],
    ]);
    expect((await loadDeployments(loc)).rollbackQueued).toBe(true);
    expect((await rollback({ locations: loc })).nextBoot).toBe('current');
    expect((await ukiOrder())[0]).toEqual([v2, '4']);

    // Switch to v3, then something reorders v1 above the staged UKI's order before shutdown:
    // finalisation still puts v3 first.
    const switched = await upgrade({ storeDir: store, locations: loc, rebootRequiredPath, switchTo: { image: `${ociLayoutDir}:v3`, transport: 'oci' } });
    expect(switched.kind).toBe('staged');
    const v3 = switched.kind === 'staged' ? switched.stagedId : '';
    await setUkiBootOrder(loc.boot, v1Uki, 9);
    expect((await finalizeStaged({ locations: loc, liveEtc: join(loc.sysroot, 'bootc/deploy/default', v2, 'etc') })).kind).toBe('finalized');
    // Kept: the booted v2 and the new default v3; v1's UKI and deployment are gone.
    expect(await ukiOrder()).toEqual([
      [v3, '10'],
      [v2, '4'],
    ]);
    expect((await readdir(ukiDir())).sort()).toEqual([`bootc-default-${v2}+3.efi`, `bootc-default-${v3}+3.efi`].sort());
    expect(await readdir(join(loc.sysroot, 'bootc/deploy/default'))).not.toContain(booted.id);
  }, 900_000);

  it('the next update removes a leftover staged UKI and selector record of a deployment that is gone', async () => {
    await bootAs((await loadDeployments(loc)).order[0]!.name.deploymentId);
    const before = (await readdir(ukiDir())).sort();
    await writeFile(join(ukiDir(), 'bootc-default-0123456789ab.0+3.efi.staged'), 'x');
    await mkdir(join(loc.sysroot, 'bootc/selectors'), { recursive: true });
    await writeFile(join(loc.sysroot, 'bootc/selectors', 'b'.repeat(64)), 'default/0123456789ab.0\n');
    // Nothing to switch to, but the cleanup under the update lock ran first.
    const again = await upgrade({ storeDir: store, locations: loc, switchTo: { image: `${ociLayoutDir}:v3`, transport: 'oci' } });
    expect(again.kind).toBe('unchanged-spec');
    expect((await readdir(ukiDir())).sort()).toEqual(before);
    expect(await readdir(join(loc.sysroot, 'bootc/selectors'))).toEqual([]);
  }, 300_000);

  it('refuses to reorder a UKI whose order is its own (sealed), with a hint of how to boot it once', async () => {
    const view = await loadDeployments(loc);
    const entry = view.rollback?.entry;
    expect(entry?.kind).toBe('uki');
    // Same length, so the PE layout stays: the .osrel no longer carries our sort key.
    const path = join(ukiDir(), entry!.fileName);
    const bytes = await readFile(path);
    const at = bytes.indexOf('IMAGE_ID=bootc');
    expect(at).toBeGreaterThan(0);
    bytes.write('IMAGE_ID=image', at);
    await writeFile(path, bytes);
    expect((await loadDeployments(loc)).rollback?.entry?.fixedOrder).toBe(true);
    const err = unwrapContext(await rollback({ locations: loc }).catch((e: unknown) => e)).root;
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('sealed');
    expect((err as UserError).hint).toContain('systemd-boot menu');
    // Untouched (compared as one value: toEqual would walk every byte).
    expect(Buffer.compare(await readFile(path), bytes)).toBe(0);
  });
});

const SNAKEOIL_KEY = '/usr/share/ovmf/PkKek-1-snakeoil.key';
const SNAKEOIL_CERT = '/usr/share/ovmf/PkKek-1-snakeoil.pem';
const skipSigned = skip ?? explainSkip('privileged', needsCommands('sbsign', 'openssl') ?? needsFile(SNAKEOIL_KEY, 'install the Debian package ovmf'));

describe.skipIf(skipSigned)('upgrade of a machine booted from a signed UKI', () => {
  it('is refused when the new image ships no signed UKI, before anything is deployed', async () => {
    const dir = testDir('uki-signed', { under: DISK_TMP });
    const loc: SysrootLocations = { sysroot: join(dir, 'sysroot'), boot: join(dir, 'boot'), cmdlinePath: join(dir, 'cmdline') };
    const store = join(dir, 'store');
    await mkdir(loc.sysroot);
    await mkdir(join(loc.boot, 'EFI/Linux'), { recursive: true });
    const imported = await importImage(loc.sysroot, await pullImage(parseReference(ociLayoutRef('v1')), { cacheDir: store }));
    const v1 = await createDeployment(loc.sysroot, imported, 'fixture:v1', {
      stateroot: 'default',
      targetImage: { image: `${ociLayoutDir}:v2`, transport: 'oci' },
      kargs: [],
      architecture: 'amd64',
      bootType: 'uki',
    });
    await mkdir(join(dir, 'work'));
    // The snakeoil key is protected by the passphrase "snakeoil"; sbsign takes a plain one.
    const key = join(dir, 'key.pem');
    await execa('openssl', ['pkey', '-in', SNAKEOIL_KEY, '-passin', 'pass:snakeoil', '-out', key]);
    const boot = await prepareDeploymentBoot(
      { deploymentDir: v1.dir, stateroot: 'default', deploymentId: v1.id, rootFsUuid: '1234-root', bootOrder: 1, uki: { signing: { key, cert: SNAKEOIL_CERT } } },
      join(dir, 'work'),
    );
    if (boot.kind !== 'uki') throw new Error('expected a UKI');
    await copyFile(boot.files[0].hostPath, join(loc.boot, 'EFI/Linux', boot.ukiFileName));
    await writeFile(loc.cmdlinePath, `root=UUID=1234-root bootc.deploy=default/${v1.id}\n`);

    const err = unwrapContext(await upgrade({ storeDir: store, locations: loc }).catch((e: unknown) => e)).root;
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('signed for Secure Boot');
    expect((err as UserError).hint).toContain('ukify --sign-key');
    expect((await readdir(join(loc.sysroot, 'bootc/deploy/default'))).filter((n) => n.endsWith('.origin'))).toEqual([`${v1.id}.origin`]);
    expect(await readdir(join(loc.boot, 'EFI/Linux'))).toEqual([boot.ukiFileName]);
  }, 600_000);
});
