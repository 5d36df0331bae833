/**
 * `bootc switch`, `--download-only` / `--from-downloaded` and the garbage collection after
 * finalisation, for real on fixture images from the OCI layout, with a sysroot and an ESP
 * made of directories (privileged tier: the checkout keeps file owners).
 */
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderBlsEntry } from '../../../src/boot/bls.js';
import { pathExists } from '../../../src/core/fs-probe.js';
import { createDeployment, importImage, type Deployment } from '../../../src/deploy/deploy.js';
import { pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import { imageDir, storeLayout } from '../../../src/store/layout.js';
import { loadDeployments, type SysrootLocations } from '../../../src/updates/deployments.js';
import { finalizeStaged } from '../../../src/updates/finalize.js';
import { readCachedUpdate, readRetainedImages } from '../../../src/updates/update-records.js';
import { upgrade } from '../../../src/updates/upgrade.js';
import { fixturesHint, fixturesIndexPath, ociLayoutDir, ociLayoutRef } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('zstd', 'cpio', 'getfattr') ?? needsFile(fixturesIndexPath, fixturesHint));

const image = (tag: string) => ({ image: `${ociLayoutDir}:${tag}`, transport: 'oci' });

describe.skipIf(skip)('switch, download-only and GC on a directory sysroot', () => {
  let dir = '';
  let loc: SysrootLocations;
  let store = '';
  let v1: Deployment;
  const rebootRequired = () => join(dir, 'reboot-required');
  const boot = (id: string) => writeFile(loc.cmdlinePath, `root=UUID=1234-root rw bootc.deploy=default/${id}\n`);

  const scratch = suiteDir('switch', { under: DISK_TMP });
  beforeAll(async () => {
    dir = scratch.path;
    loc = { sysroot: join(dir, 'sysroot'), boot: join(dir, 'boot'), cmdlinePath: join(dir, 'cmdline') };
    store = join(dir, 'store');
    await mkdir(loc.sysroot);
    await mkdir(join(loc.boot, 'loader/entries'), { recursive: true });
    // Installed from another cache: the update's cache starts empty, as on a new machine.
    const pulled = await pullImage(parseReference(ociLayoutRef('v1')), { cacheDir: join(dir, 'install-cache') });
    v1 = await createDeployment(loc.sysroot, await importImage(loc.sysroot, pulled), 'fixture:v1', {
      stateroot: 'default',
      targetImage: image('v1'),
      kargs: [],
      architecture: 'amd64',
    });
    await mkdir(join(loc.boot, 'bootc', v1.id), { recursive: true });
    await writeFile(
      join(loc.boot, 'loader/entries', `bootc-default-${v1.id}.conf`),
      renderBlsEntry({ title: 'v1', version: '1', sortKey: 'bootc', linux: `/bootc/${v1.id}/vmlinuz`, initrd: `/bootc/${v1.id}/initrd.img`, options: 'o' }),
    );
    await boot(v1.id);
  }, 300_000);

  it('switches with --download-only, fetching only the layer the store lacks; finalisation waits for --from-downloaded', async () => {
    expect((await upgrade({ storeDir: store, locations: loc, switchTo: image('v1') })).kind).toBe('unchanged-spec');

    const check = await upgrade({ storeDir: store, locations: loc, switchTo: image('v2'), check: true });
    expect(check.kind).toBe('update-available');
    expect((await readCachedUpdate(loc.sysroot))?.version).toBe('2');

    const staged = await upgrade({ storeDir: store, locations: loc, switchTo: image('v2'), downloadOnly: true, rebootRequiredPath: rebootRequired() });
    expect(staged.kind).toBe('staged');
    expect(staged.text).toContain('--from-downloaded');
    expect(await pathExists(rebootRequired())).toBe(false);
    expect(await readCachedUpdate(loc.sysroot)).toBeNull();
    // v2 = v1's layers + one: only that one layer reached the cache.
    const blobs = await readdir(join(store, 'blobs/sha256'));
    const layerBlobs = [];
    for (const b of blobs) if ((await stat(join(store, 'blobs/sha256', b))).size > 100_000) layerBlobs.push(b);
    expect(layerBlobs).toEqual([]);

    const view = await loadDeployments(loc);
    expect(view.stagedRecord?.downloadOnly).toBe(true);
    expect(view.staged?.origin.image).toEqual(image('v2'));
    expect(await finalizeStaged({ locations: loc, liveEtc: join(v1.dir, 'etc') })).toEqual({ kind: 'download-only', id: view.staged!.ref.id });
    expect((await loadDeployments(loc)).order).toHaveLength(1);

    const applied = await upgrade({ storeDir: store, locations: loc, fromDownloaded: true, rebootRequiredPath: rebootRequired() });
    expect(applied.text).toMatch(/^Queued for next boot: oci:.*:v2\n/);
    expect(await pathExists(rebootRequired())).toBe(true);
    expect((await loadDeployments(loc)).stagedRecord?.downloadOnly).toBeUndefined();
    expect((await finalizeStaged({ locations: loc, liveEtc: join(v1.dir, 'etc') })).kind).toBe('finalized');
  }, 600_000);

  it('after the next finalisation, the old rollback goes: entry, ESP files, checkout and its store image', async () => {
    const v2 = (await loadDeployments(loc)).order[0]!.name.deploymentId;
    await boot(v2);
    // The booted v2 now follows v2; an upgrade finds nothing, a switch to v3 stages it.
    expect((await upgrade({ storeDir: store, locations: loc })).kind).toBe('no-changes');
    const staged = await upgrade({ storeDir: store, locations: loc, switchTo: image('v3'), rebootRequiredPath: rebootRequired() });
    expect(staged.kind).toBe('staged');
    expect((await loadDeployments(loc)).rollback?.ref.id).toBe(v1.id);

    expect((await finalizeStaged({ locations: loc, liveEtc: join(loc.sysroot, 'bootc/deploy/default', v2, 'etc') })).kind).toBe('finalized');
    const after = await loadDeployments(loc);
    expect(after.order.map((e) => e.name.deploymentId)).toEqual([expect.stringMatching(/\.0$/), v2]);
    expect(after.order[0]!.name.deploymentId).not.toBe(v1.id);
    expect(await pathExists(join(loc.sysroot, 'bootc/deploy/default', v1.id))).toBe(false);
    expect(await pathExists(join(loc.sysroot, 'bootc/deploy/default', `${v1.id}.origin`))).toBe(false);
    expect(await pathExists(join(loc.boot, 'bootc', v1.id))).toBe(false);
    expect(await pathExists(imageDir(storeLayout(loc.sysroot), v1.origin.manifestDigest))).toBe(false);
    expect(await pathExists(imageDir(storeLayout(loc.sysroot), after.booted!.origin.manifestDigest))).toBe(true);
  }, 600_000);

  it('switch --retain keeps the image switched away from in the store; switching back to it fetches no layer', async () => {
    const etcOf = (id: string) => join(loc.sysroot, 'bootc/deploy/default', id, 'etc');
    const v3 = (await loadDeployments(loc)).order[0]!.name.deploymentId;
    await boot(v3);
    const v3Digest = (await loadDeployments(loc)).booted!.origin.manifestDigest;
    expect((await upgrade({ storeDir: store, locations: loc, switchTo: image('v1'), retain: true, rebootRequiredPath: rebootRequired() })).kind).toBe('staged');
    expect(await readRetainedImages(loc.sysroot)).toEqual([{ image: image('v3'), imageDigest: v3Digest }]);
    expect((await finalizeStaged({ locations: loc, liveEtc: etcOf(v3) })).kind).toBe('finalized');

    // Booted v1, a switch to v2 (no --retain): at its finalisation v3's deployment goes, its image stays.
    await boot((await loadDeployments(loc)).order[0]!.name.deploymentId);
    expect((await upgrade({ storeDir: store, locations: loc, switchTo: image('v2'), rebootRequiredPath: rebootRequired() })).kind).toBe('staged');
    const booted = (await loadDeployments(loc)).booted!.ref.id;
    expect((await finalizeStaged({ locations: loc, liveEtc: etcOf(booted) })).kind).toBe('finalized');
    expect(await pathExists(join(loc.sysroot, 'bootc/deploy/default', v3))).toBe(false);
    expect(await pathExists(imageDir(storeLayout(loc.sysroot), v3Digest))).toBe(true);

    // Back to v3 with an empty download cache: only the manifest and config are fetched.
    await boot((await loadDeployments(loc)).order[0]!.name.deploymentId);
    const freshCache = join(dir, 'fresh-cache');
    expect((await upgrade({ storeDir: freshCache, locations: loc, switchTo: image('v3'), rebootRequiredPath: rebootRequired() })).kind).toBe('staged');
    expect(await readdir(join(freshCache, 'blobs/sha256'))).toHaveLength(2);
    expect(await readRetainedImages(loc.sysroot)).toEqual([]);
  }, 600_000);
});
