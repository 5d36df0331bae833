/** Finalisation and rollback on a sysroot and ESP made of plain directories (no image needed). */
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseBlsEntry, renderBlsEntry } from '../../../src/boot/bls.js';
import { parseGrubEnv, renderGrubEnv } from '../../../src/boot/grub-menu.js';
import { renderOrigin, type Origin } from '../../../src/deploy/origin.js';
import { loadDeployments, renderStagedRecord, type SysrootLocations } from '../../../src/updates/deployments.js';
import { finalizeStaged } from '../../../src/updates/finalize.js';
import { rollback } from '../../../src/updates/rollback.js';
import { pruneDeployments } from '../../../src/updates/cleanup.js';
import { setPinned } from '../../../src/updates/pin.js';
import { hostStatus, renderHumanReadable } from '../../../src/updates/status.js';
import { testOrigin } from '../../support/origin.js';
import { testDir } from '../../support/temp-tree.js';

let dir = '';
let loc: SysrootLocations;

const origin = (id: string): Origin => testOrigin(id, { manifestDigest: `sha256:${id[0]!.repeat(64)}` });

async function deployment(id: string, etc: Record<string, string>, usrEtc: Record<string, string>): Promise<void> {
  const d = join(loc.sysroot, 'bootc/deploy/default', id);
  for (const [sub, files] of [['etc', etc], ['usr/etc', usrEtc]] as const) {
    await mkdir(join(d, sub), { recursive: true });
    for (const [name, text] of Object.entries(files)) await writeFile(join(d, sub, name), text);
  }
  await writeFile(join(loc.sysroot, `bootc/deploy/default/${id}.origin`), renderOrigin(origin(id)));
}

const entryText = (id: string, version: string) =>
  renderBlsEntry({ title: `os ${id}`, version, sortKey: 'bootc', linux: `/bootc/${id}/vmlinuz`, initrd: `/bootc/${id}/initrd.img`, options: `root=UUID=x bootc.deploy=default/${id}` });

async function writeEntry(fileName: string, id: string, version: string): Promise<void> {
  await writeFile(join(loc.boot, 'loader/entries', fileName), entryText(id, version));
}

const versionOf = async (fileName: string): Promise<string | undefined> =>
  parseBlsEntry(await readFile(join(loc.boot, 'loader/entries', fileName), 'utf8'))['version']?.[0];

const bootTo = (id: string) => writeFile(loc.cmdlinePath, `root=UUID=x bootc.deploy=default/${id}\n`);

beforeEach(async () => {
  dir = testDir('updates');
  loc = { sysroot: join(dir, 'sysroot'), boot: join(dir, 'boot'), cmdlinePath: join(dir, 'cmdline') };
  await mkdir(join(loc.sysroot, 'bootc/deploy/default'), { recursive: true });
  await mkdir(join(loc.boot, 'loader/entries'), { recursive: true });
});

/** Stages deployment b.0 with a Type #1 entry on trial (+3), as `bootc upgrade` records it. */
async function stageB(): Promise<void> {
  await writeFile(
    join(loc.sysroot, 'bootc/staged'),
    renderStagedRecord({
      stateroot: 'default',
      id: 'b.0',
      entryFileName: 'bootc-default-b.0+3.conf',
      entry: { title: 'os b', sortKey: 'bootc', linux: '/bootc/b.0/vmlinuz', initrd: '/bootc/b.0/initrd.img', options: 'root=UUID=x bootc.deploy=default/b.0' },
    }),
  );
}

describe('finalizeStaged', () => {
  it('merges /etc into the staged deployment, writes its entry as the default and removes the record', async () => {
    await deployment('a.0', {}, { 'user.conf': 'user=1\n', 'image.conf': 'image=1\n' });
    const liveEtc = join(dir, 'live-etc');
    await mkdir(liveEtc);
    await writeFile(join(liveEtc, 'user.conf'), 'user=changed locally\n');
    await writeFile(join(liveEtc, 'image.conf'), 'image=1\n');
    await writeFile(join(liveEtc, 'added.conf'), 'added\n');
    await deployment('b.0', { 'user.conf': 'user=2\n', 'image.conf': 'image=2\n' }, { 'user.conf': 'user=2\n', 'image.conf': 'image=2\n' });
    await writeEntry('bootc-default-a.0.conf', 'a.0', '1');
    await bootTo('a.0');
    await stageB();

    const outcome = await finalizeStaged({ locations: loc, liveEtc });
    expect(outcome.kind).toBe('finalized');
    const etc = join(loc.sysroot, 'bootc/deploy/default/b.0/etc');
    expect(await readFile(join(etc, 'user.conf'), 'utf8')).toBe('user=changed locally\n');
    expect(await readFile(join(etc, 'image.conf'), 'utf8')).toBe('image=2\n');
    expect(await readFile(join(etc, 'added.conf'), 'utf8')).toBe('added\n');
    expect(await versionOf('bootc-default-b.0+3.conf')).toBe('2');
    expect(await readdir(join(loc.sysroot, 'bootc'))).not.toContain('staged');
    expect((await readdir(join(loc.sysroot, 'bootc/deploy/default/b.0'))).filter((n) => n.startsWith('.'))).toEqual([]);
    const view = await loadDeployments(loc);
    expect(view.order[0]?.name.deploymentId).toBe('b.0');
    expect(view.rollback?.ref.id).toBe('b.0');

    expect((await finalizeStaged({ locations: loc, liveEtc })).kind).toBe('nothing-staged');
  });
});

describe('finalizeStaged with nothing staged', () => {
  it('writes nothing under the physical root, not even the update lock', async () => {
    await deployment('a.0', {}, {});
    await writeEntry('bootc-default-a.0.conf', 'a.0', '1');
    await bootTo('a.0');
    // Taking the update lock creates and removes files in bootc/: the directory's mtime tells.
    const bootcDir = join(loc.sysroot, 'bootc');
    const before = (await stat(bootcDir)).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    expect(await finalizeStaged({ locations: loc, liveEtc: join(dir, 'no-etc') })).toEqual({ kind: 'nothing-staged' });
    expect(await readdir(bootcDir)).toEqual(['deploy']);
    expect((await stat(bootcDir)).mtimeMs).toBe(before);
  });
});

describe('finalizeStaged after a crash', () => {
  it('a record left behind once the entry was written is only removed', async () => {
    await deployment('a.0', {}, {});
    await deployment('b.0', { 'x.conf': 'mine\n' }, {});
    await writeEntry('bootc-default-a.0.conf', 'a.0', '1');
    await writeEntry('bootc-default-b.0+3.conf', 'b.0', '2');
    await bootTo('a.0');
    await writeFile(
      join(loc.sysroot, 'bootc/staged'),
      renderStagedRecord({ stateroot: 'default', id: 'b.0', entryFileName: 'bootc-default-b.0+3.conf', entry: { title: 't', sortKey: 'bootc', linux: '/l', initrd: '/i', options: 'o' } }),
    );
    expect((await finalizeStaged({ locations: loc, liveEtc: join(dir, 'nowhere') })).kind).toBe('finalized');
    expect(await versionOf('bootc-default-b.0+3.conf')).toBe('2');
    expect(await readFile(join(loc.sysroot, 'bootc/deploy/default/b.0/etc/x.conf'), 'utf8')).toBe('mine\n');
    expect(await readdir(join(loc.sysroot, 'bootc'))).not.toContain('staged');
  });

  it('a record whose deployment has no origin (incomplete) is dropped, entries untouched', async () => {
    await deployment('a.0', {}, {});
    await writeEntry('bootc-default-a.0.conf', 'a.0', '1');
    await bootTo('a.0');
    await writeFile(
      join(loc.sysroot, 'bootc/staged'),
      renderStagedRecord({ stateroot: 'default', id: 'z.0', entryFileName: 'bootc-default-z.0+3.conf', entry: { title: 't', sortKey: 'bootc', linux: '/l', initrd: '/i', options: 'o' } }),
    );
    expect((await finalizeStaged({ locations: loc })).kind).toBe('nothing-staged');
    expect(await readdir(join(loc.boot, 'loader/entries'))).toEqual(['bootc-default-a.0.conf']);
    expect(await readdir(join(loc.sysroot, 'bootc'))).not.toContain('staged');
  });
});

describe('rollback', () => {
  beforeEach(async () => {
    await deployment('a.0', {}, {});
    await deployment('b.0', {}, {});
    await writeEntry('bootc-default-a.0.conf', 'a.0', '1');
    await writeEntry('bootc-default-b.0.conf', 'b.0', '2');
    await bootTo('b.0');
  });

  it('puts the rollback deployment first; run again, the booted one', async () => {
    const first = await rollback({ locations: loc });
    expect(first.text).toBe('Next boot: rollback deployment\n');
    expect((await loadDeployments(loc)).order[0]?.name.deploymentId).toBe('a.0');
    expect((await loadDeployments(loc)).rollbackQueued).toBe(true);

    const second = await rollback({ locations: loc });
    expect(second.text).toContain('Next boot: current deployment\n');
    const view = await loadDeployments(loc);
    expect(view.order[0]?.name.deploymentId).toBe('b.0');
    expect(view.rollbackQueued).toBe(false);
    // Each run rewrote one entry; the other kept its content.
    expect(await versionOf('bootc-default-a.0.conf')).toBe('3');
    expect(await versionOf('bootc-default-b.0.conf')).toBe('4');
  });

  it('drops a staged deployment', async () => {
    await deployment('c.0', {}, {});
    await mkdir(join(loc.boot, 'bootc/c.0'), { recursive: true });
    await writeFile(join(loc.boot, 'bootc/c.0/vmlinuz'), 'k');
    await writeFile(
      join(loc.sysroot, 'bootc/staged'),
      renderStagedRecord({ stateroot: 'default', id: 'c.0', entryFileName: 'bootc-default-c.0+3.conf', entry: { title: 't', sortKey: 'bootc', linux: '/l', initrd: '/i', options: 'o' } }),
    );
    const outcome = await rollback({ locations: loc });
    expect(outcome.droppedStaged).toBe('c.0');
    expect(await readdir(join(loc.sysroot, 'bootc/deploy/default'))).toEqual(expect.not.arrayContaining(['c.0', 'c.0.origin']));
    expect(await readdir(join(loc.boot, 'bootc'))).toEqual([]);
    expect((await loadDeployments(loc)).staged).toBeNull();
  });

  it('refuses when there is no rollback deployment', async () => {
    await rm(join(loc.boot, 'loader/entries/bootc-default-a.0.conf'));
    await expect(rollback({ locations: loc })).rejects.toThrow(/No rollback deployment/);
    expect(await versionOf('bootc-default-b.0.conf')).toBe('2');
  });
});

describe('pinned deployments', () => {
  beforeEach(async () => {
    for (const [id, version] of [['a.0', '1'], ['b.0', '2']] as const) {
      await deployment(id, {}, {});
      await writeEntry(`bootc-default-${id}.conf`, id, version);
      await mkdir(join(loc.boot, 'bootc', id), { recursive: true });
      await writeFile(join(loc.boot, 'bootc', id, 'vmlinuz'), 'k');
    }
    await bootTo('b.0');
  });

  it('survive the collection after finalisation, stay bootable and are listed as other deployments', async () => {
    expect(await setPinned('rollback', true, { locations: loc })).toBe('Deployment default/a.0 is now pinned: updates keep it\n');
    expect(await setPinned('default/a.0', true, { locations: loc })).toBe('Deployment default/a.0 is already pinned\n');
    await deployment('c.0', {}, {});
    await writeFile(
      join(loc.sysroot, 'bootc/staged'),
      renderStagedRecord({ stateroot: 'default', id: 'c.0', entryFileName: 'bootc-default-c.0+3.conf', entry: { title: 't', sortKey: 'bootc', linux: '/bootc/c.0/vmlinuz', initrd: '/bootc/c.0/initrd.img', options: 'bootc.deploy=default/c.0' } }),
    );
    await mkdir(join(dir, 'live-etc'));
    expect((await finalizeStaged({ locations: loc, liveEtc: join(dir, 'live-etc') })).kind).toBe('finalized');
    // Booted b.0 and the new default c.0 are kept by the collection; a.0 only by its pin.
    expect((await readdir(join(loc.boot, 'loader/entries'))).sort()).toEqual(['bootc-default-a.0.conf', 'bootc-default-b.0.conf', 'bootc-default-c.0+3.conf']);
    expect(await readdir(join(loc.boot, 'bootc/a.0'))).toEqual(['vmlinuz']);
    const view = await loadDeployments(loc);
    expect(view.others.map((d) => d.ref.id)).toEqual(['a.0']);
    const host = hostStatus(view);
    expect(host.status.otherDeployments?.map((e) => [e.deployment.id, e.pinned])).toEqual([['a.0', true]]);
    expect(renderHumanReadable(host)).toMatch(/ {2}Other image: localhost:5000\/os:latest\n(.*\n)*? +Pinned: yes\n/);

    // The leftover sweep under the update lock keeps it too.
    await pruneDeployments(loc, { keep: [view.booted!.ref, { stateroot: 'default', id: 'c.0' }], leftovers: true });
    expect(await readdir(join(loc.sysroot, 'bootc/deploy/default'))).toEqual(expect.arrayContaining(['a.0', 'a.0.origin']));
    expect(await readdir(join(loc.boot, 'bootc'))).toContain('a.0');

    expect(await setPinned('default/a.0', false, { locations: loc })).toBe('Deployment default/a.0 is now unpinned: the next update may remove it\n');
    const pruned = await pruneDeployments(loc, { keep: [view.booted!.ref, { stateroot: 'default', id: 'c.0' }], leftovers: true });
    expect(pruned.removed).toEqual(['default/a.0']);
    expect(await readdir(join(loc.boot, 'loader/entries'))).not.toContain('bootc-default-a.0.conf');
    expect(hostStatus(await loadDeployments(loc)).status).not.toHaveProperty('otherDeployments');
  });

  it('are refused for a staged deployment or one that does not exist, naming those that do', async () => {
    await deployment('c.0', {}, {});
    await writeFile(
      join(loc.sysroot, 'bootc/staged'),
      renderStagedRecord({ stateroot: 'default', id: 'c.0', entryFileName: 'bootc-default-c.0+3.conf', entry: { title: 't', sortKey: 'bootc', linux: '/l', initrd: '/i', options: 'o' } }),
    );
    await expect(setPinned('staged', true, { locations: loc })).rejects.toThrow(/a staged deployment cannot be pinned/);
    await expect(setPinned('default/c.0', true, { locations: loc })).rejects.toThrow(/a staged deployment cannot be pinned/);
    const unknown = await setPinned('default/zz.0', true, { locations: loc }).catch((e: unknown) => e as Error & { hint?: string });
    expect((unknown as Error).message).toBe('no deployment default/zz.0');
    expect((unknown as { hint?: string }).hint).toContain('booted, rollback, default/b.0, default/a.0');
    expect(await readFile(join(loc.sysroot, 'bootc/deploy/default/a.0.origin'), 'utf8')).toContain('"pinned": false');
  });

  it('need a system booted from a deployment', async () => {
    await writeFile(loc.cmdlinePath, 'root=UUID=x\n');
    await expect(setPinned('booted', true, { locations: loc })).rejects.toThrow(/not deployed via bootc/);
  });
});

describe('GRUB menu on a hybrid disk', () => {
  const grubIds = async (): Promise<string[]> =>
    [...(await readFile(join(loc.boot, 'grub/grub.cfg'), 'utf8')).matchAll(/--id (\S+)/g)].map((m) => m[1]!);
  const grubEnv = async () => parseGrubEnv(await readFile(join(loc.boot, 'grub/grubenv'), 'utf8'));

  it('follows finalisation (new default on trial) and rollback, and status counts what GRUB counted', async () => {
    await mkdir(join(loc.boot, 'grub'));
    await writeFile(join(loc.boot, 'grub/grub.cfg'), '# from the install\n');
    await deployment('a.0', {}, {});
    await deployment('b.0', {}, {});
    await writeEntry('bootc-default-a.0.conf', 'a.0', '1');
    await bootTo('a.0');
    await stageB();
    expect((await finalizeStaged({ locations: loc, liveEtc: join(loc.sysroot, 'bootc/deploy/default/a.0/etc') })).kind).toBe('finalized');
    expect(await grubIds()).toEqual(['bootc-default-b.0', 'bootc-default-a.0']);
    expect(await grubEnv()).toEqual({ bootc_trial: 'bootc-default-b.0', bootc_tries: '3' });

    // GRUB spent b.0's tries under BIOS: status says so, and a.0 boots next.
    await writeFile(join(loc.boot, 'grub/grubenv'), renderGrubEnv({ bootc_trial: 'bootc-default-b.0', bootc_tries: '0' }));
    const view = await loadDeployments(loc);
    expect(view.order.map((e) => [e.name.deploymentId, e.name.counter?.triesLeft])).toEqual([['a.0', undefined], ['b.0', 0]]);

    await writeFile(join(loc.boot, 'grub/grubenv'), renderGrubEnv({ bootc_trial: 'bootc-default-b.0', bootc_tries: '2' }));
    await rollback({ locations: loc });
    expect(await grubIds()).toEqual(['bootc-default-a.0', 'bootc-default-b.0']);
    expect(await grubEnv()).toEqual({});
  });
});
