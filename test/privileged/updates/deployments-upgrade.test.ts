/**
 * `upgrade` (and finalisation after it) for real, on fixture:v1 → fixture:v2 from the OCI
 * layout, with a sysroot and an ESP made of directories: the privileged tier (root, for the
 * checkout's file ownership), skipped with a reason when the fixtures are missing. The pure
 * parts of upgrade.ts are tested first, without either.
 */
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseBlsEntry, renderBlsEntry } from '../../../src/boot/bls.js';
import { createDeployment, importImage, type Deployment } from '../../../src/deploy/deploy.js';
import { pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import { loadDeployments, type SysrootLocations } from '../../../src/updates/deployments.js';
import { finalizeStaged } from '../../../src/updates/finalize.js';
import { diffLayers, renderLayerDiff, rootArgument, upgrade } from '../../../src/updates/upgrade.js';
import { fixturesHint, fixturesIndexPath, ociLayoutDir, ociLayoutRef } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

describe('upgrade, pure parts', () => {
  it('diffs layers by digest', () => {
    const a = { digest: 'sha256:a', size: 10 };
    const b = { digest: 'sha256:b', size: 20 };
    const c = { digest: 'sha256:c', size: 1500 };
    expect(diffLayers([a, b], [a, c])).toEqual({ added: [c], removed: [b] });
    expect(renderLayerDiff([a, c], { added: [c], removed: [b] })).toBe(
      'Total new layers: 2    Size: 1.5 kB\nRemoved layers:   1    Size: 20 B\nAdded layers:     1    Size: 1.5 kB\n',
    );
    // The booted image's compressed sizes are not kept: no size for removed layers then.
    expect(renderLayerDiff([c], { added: [c], removed: [{ digest: 'sha256:b', size: null }] })).toContain('Removed layers:   1\n');
  });

  it('finds root= on the command line', () => {
    expect(rootArgument('BOOT_IMAGE=x root=UUID=abc ro bootc.deploy=default/a.0')).toBe('root=UUID=abc');
    expect(rootArgument('quiet')).toBeNull();
  });
});

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('zstd', 'cpio') ?? needsFile(fixturesIndexPath, fixturesHint));

describe.skipIf(skip)('upgrade v1 → v2 on a directory sysroot', () => {
  let dir = '';
  let loc: SysrootLocations;
  let store = '';
  let booted: Deployment;

  const scratch = suiteDir('upgrade', { under: DISK_TMP });
  beforeAll(async () => {
    dir = scratch.path;
    loc = { sysroot: join(dir, 'sysroot'), boot: join(dir, 'boot'), cmdlinePath: join(dir, 'cmdline') };
    store = join(dir, 'store');
    await mkdir(loc.sysroot);
    await mkdir(join(loc.boot, 'loader/entries'), { recursive: true });
    const pulled = await pullImage(parseReference(ociLayoutRef('v1')), { cacheDir: store });
    const imported = await importImage(loc.sysroot, pulled);
    // It follows the v2 tag, as a machine follows a tag that moved in its registry.
    booted = await createDeployment(loc.sysroot, imported, 'fixture:v1', {
      stateroot: 'default',
      targetImage: { image: `${ociLayoutDir}:v2`, transport: 'oci' },
      kargs: ['quiet'],
      architecture: 'amd64',
    });
    await writeFile(
      join(loc.boot, 'loader/entries', `bootc-default-${booted.id}.conf`),
      renderBlsEntry({ title: 'v1', version: '1', sortKey: 'bootc', linux: '/l', initrd: '/i', options: 'o' }),
    );
    await writeFile(loc.cmdlinePath, `root=UUID=1234-root ro bootc.deploy=default/${booted.id}\n`);
  }, 300_000);

  it('stages v2 without touching the entries, then finalisation makes it the default', async () => {
    const rebootRequiredPath = join(dir, 'reboot-required');
    const outcome = await upgrade({ storeDir: store, locations: loc, rebootRequiredPath });
    expect(outcome.kind).toBe('staged');
    expect(outcome.text).toMatch(/^Queued for next boot: oci:.*:v2\n {2}Version: 2\n {2}Digest: sha256:[0-9a-f]{64}\n/);
    expect(outcome.text).toContain('Added layers:     1');
    await stat(rebootRequiredPath);

    const view = await loadDeployments(loc);
    const staged = view.staged!;
    expect(staged).not.toBeNull();
    expect(staged.entry).toBeNull();
    expect(view.order.map((e) => e.name.deploymentId)).toEqual([booted.id]);
    const rec = view.stagedRecord;
    if (rec?.kind === 'uki') throw new Error('a Type #1 system staged a UKI');
    expect(rec?.entry.options).toContain('root=UUID=1234-root');
    expect(rec?.entry.options).toContain(`bootc.deploy=default/${staged.ref.id}`);
    expect(rec?.entry.options).toContain('quiet');
    expect((await readdir(join(loc.boot, 'bootc', staged.ref.id))).sort()).toEqual(['initrd.img', 'vmlinuz']);
    const newDir = join(loc.sysroot, 'bootc/deploy/default', staged.ref.id);
    expect((await readFile(join(newDir, 'usr/lib/fixture-release'), 'utf8')).trim()).toBe('2');

    // Again: nothing new to stage; --check agrees.
    expect((await upgrade({ storeDir: store, locations: loc, rebootRequiredPath })).kind).toBe('already-staged');
    expect((await upgrade({ storeDir: store, locations: loc, check: true })).text).toBe('No update available.\n');

    // The user's change to the live /etc (the booted deployment's) survives the merge.
    const liveEtc = join(booted.dir, 'etc');
    await writeFile(join(liveEtc, 'fixture/user.conf'), 'user=mine\n');
    const finalized = await finalizeStaged({ locations: loc, liveEtc });
    expect(finalized.kind).toBe('finalized');
    expect(await readFile(join(newDir, 'etc/fixture/user.conf'), 'utf8')).toBe('user=mine\n');
    expect((await readFile(join(newDir, 'etc/fixture/image.conf'), 'utf8')).trim()).toBe('image=2');
    const after = await loadDeployments(loc);
    expect(after.staged).toBeNull();
    expect(after.order[0]?.name.deploymentId).toBe(staged.ref.id);
    const entry = parseBlsEntry(await readFile(join(loc.boot, 'loader/entries', after.order[0]!.fileName), 'utf8'));
    expect(entry['version']).toEqual(['2']);

    // Booted into v2: the image it follows is what it runs.
    await writeFile(loc.cmdlinePath, `root=UUID=1234-root bootc.deploy=default/${staged.ref.id}\n`);
    expect((await upgrade({ storeDir: store, locations: loc })).text).toBe(`No changes in: oci:${ociLayoutDir}:v2\n`);
  }, 600_000);
});
