/**
 * `bootc upgrade --tag`, for real on fixture images from the OCI layout, with a sysroot and
 * an ESP made of directories (privileged tier: the checkout keeps file owners).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderBlsEntry } from '../../../src/boot/bls.js';
import { createDeployment, importImage } from '../../../src/deploy/deploy.js';
import { pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import { loadDeployments, type SysrootLocations } from '../../../src/updates/deployments.js';
import { readCachedUpdate } from '../../../src/updates/update-records.js';
import { upgrade } from '../../../src/updates/upgrade.js';
import { fixturesHint, fixturesIndexPath, ociLayoutDir, ociLayoutRef } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsRoot } from '../../support/tier.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('zstd', 'cpio', 'getfattr') ?? needsFile(fixturesIndexPath, fixturesHint));

const image = (tag: string) => ({ image: `${ociLayoutDir}:${tag}`, transport: 'oci' });

describe.skipIf(skip)('upgrade --tag on a directory sysroot', () => {
  let dir = '';
  let loc: SysrootLocations;

  const scratch = suiteDir('tag', { under: DISK_TMP });
  beforeAll(async () => {
    dir = scratch.path;
    loc = { sysroot: join(dir, 'sysroot'), boot: join(dir, 'boot'), cmdlinePath: join(dir, 'cmdline') };
    await mkdir(loc.sysroot);
    await mkdir(join(loc.boot, 'loader/entries'), { recursive: true });
    const pulled = await pullImage(parseReference(ociLayoutRef('v1')), { cacheDir: join(dir, 'cache') });
    const v1 = await createDeployment(loc.sysroot, await importImage(loc.sysroot, pulled), 'fixture:v1', {
      stateroot: 'default',
      targetImage: image('v1'),
      kargs: [],
      architecture: 'amd64',
    });
    await writeFile(
      join(loc.boot, 'loader/entries', `bootc-default-${v1.id}.conf`),
      renderBlsEntry({ title: 'v1', version: '1', sortKey: 'bootc', linux: `/bootc/${v1.id}/vmlinuz`, initrd: `/bootc/${v1.id}/initrd.img`, options: 'o' }),
    );
    await writeFile(loc.cmdlinePath, `root=UUID=1234-root rw bootc.deploy=default/${v1.id}\n`);
  }, 300_000);

  it('--check --tag v2 looks at v2; --tag v2 stages it and follows :v2 from then on; a plain upgrade then has nothing new', async () => {
    const store = join(dir, 'store');
    const check = await upgrade({ storeDir: store, locations: loc, tag: 'v2', check: true });
    expect(check.kind).toBe('update-available');
    expect(check.text).toContain(`Update available for: oci:${ociLayoutDir}:v2`);
    expect((await readCachedUpdate(loc.sysroot))?.version).toBe('2');

    const staged = await upgrade({ storeDir: store, locations: loc, tag: 'v2', rebootRequiredPath: join(dir, 'reboot-required') });
    expect(staged.kind).toBe('staged');
    expect(staged.text).toContain(`Queued for next boot: oci:${ociLayoutDir}:v2`);
    expect((await loadDeployments(loc)).staged?.origin.image).toEqual(image('v2'));

    // The staged deployment follows :v2 now, so `bootc upgrade` finds it staged already.
    expect((await upgrade({ storeDir: store, locations: loc, rebootRequiredPath: join(dir, 'reboot-required') })).kind).toBe('already-staged');
  }, 300_000);
});
