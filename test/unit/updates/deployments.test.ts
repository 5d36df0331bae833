import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEntryFileName } from '../../../src/boot/bls.js';
import { renderOrigin, type Origin } from '../../../src/deploy/origin.js';
import {
  describeDeployments,
  loadDeployments,
  parseStagedRecord,
  renderStagedRecord,
  requireBooted,
  type EntryOnEsp,
  type StagedRecord,
  type StagedType1Record,
} from '../../../src/updates/deployments.js';
import { testOrigin } from '../../support/origin.js';
import { testDir } from '../../support/temp-tree.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;

const origin = (id: string, d = 'a'): Origin => testOrigin(id, { manifestDigest: digest(d) });

function entry(fileName: string, version: string): EntryOnEsp {
  return { fileName, name: parseEntryFileName(fileName)!, version };
}

const staged = (id: string): StagedRecord => ({
  stateroot: 'default',
  id,
  entryFileName: `bootc-default-${id}+3.conf`,
  entry: { title: 'Debian', sortKey: 'bootc', linux: `/bootc/${id}/vmlinuz`, initrd: `/bootc/${id}/initrd.img`, options: 'root=UUID=x' },
});

describe('describeDeployments', () => {
  it('booted is the default, the other entry is the rollback', () => {
    const view = describeDeployments({
      origins: [origin('a.0'), origin('b.0', 'b')],
      entries: [entry('bootc-default-a.0.conf', '1'), entry('bootc-default-b.0.conf', '2')],
      booted: { stateroot: 'default', id: 'b.0' },
      staged: null,
    });
    expect(view.booted?.ref.id).toBe('b.0');
    expect(view.rollback?.ref.id).toBe('a.0');
    expect(view.staged).toBeNull();
    expect(view.rollbackQueued).toBe(false);
    expect(view.nextVersion).toBe(3);
  });

  it('a rollback entry ordered first is a queued rollback', () => {
    const view = describeDeployments({
      origins: [origin('a.0'), origin('b.0', 'b')],
      entries: [entry('bootc-default-a.0.conf', '3'), entry('bootc-default-b.0+2-1.conf', '2')],
      booted: { stateroot: 'default', id: 'b.0' },
      staged: null,
    });
    expect(view.rollbackQueued).toBe(true);
    expect(view.order.map((e) => e.name.deploymentId)).toEqual(['a.0', 'b.0']);
  });

  it('an entry with no tries left is not first, even with the highest version', () => {
    const view = describeDeployments({
      origins: [origin('a.0'), origin('b.0', 'b')],
      entries: [entry('bootc-default-a.0.conf', '1'), entry('bootc-default-b.0+0-3.conf', '2')],
      booted: { stateroot: 'default', id: 'a.0' },
      staged: null,
    });
    expect(view.order[0]?.name.deploymentId).toBe('a.0');
    expect(view.rollback?.ref.id).toBe('b.0');
  });

  it('a staged deployment has no entry and is not the rollback', () => {
    const view = describeDeployments({
      origins: [origin('a.0'), origin('b.0', 'b'), origin('c.0', 'c')],
      entries: [entry('bootc-default-a.0.conf', '1'), entry('bootc-default-b.0.conf', '10')],
      booted: { stateroot: 'default', id: 'b.0' },
      staged: staged('c.0'),
    });
    expect(view.staged?.ref.id).toBe('c.0');
    expect(view.staged?.entry).toBeNull();
    expect(view.rollback?.ref.id).toBe('a.0');
    expect(view.nextVersion).toBe(11);
  });

  it('a deployment without an origin is ignored (incomplete)', () => {
    const view = describeDeployments({
      origins: [origin('b.0', 'b')],
      entries: [entry('bootc-default-a.0.conf', '1'), entry('bootc-default-b.0.conf', '2')],
      booted: { stateroot: 'default', id: 'b.0' },
      staged: staged('c.0'),
    });
    expect(view.rollback).toBeNull();
    expect(view.staged).toBeNull();
  });

  it('requireBooted explains a system not deployed by bootc', () => {
    const view = describeDeployments({ origins: [], entries: [], booted: null, staged: null });
    expect(() => requireBooted(view)).toThrow(/not deployed via bootc/);
  });
});

describe('staged record', () => {
  it('round-trips and rejects a damaged record', () => {
    const rec = staged('c.0');
    expect(parseStagedRecord(renderStagedRecord(rec), 'x')).toEqual(rec);
    expect(() => parseStagedRecord('{', '/sysroot/bootc/staged')).toThrow(/staged is not valid JSON/);
    expect(() => parseStagedRecord('{"id":1}', '/sysroot/bootc/staged')).toThrow(/not a staged update record/);
    const bad = (patch: Record<string, unknown>) => JSON.stringify({ ...rec, ...patch });
    expect(() => parseStagedRecord(bad({ entry: { ...(rec as StagedType1Record).entry, linux: 3 } }), 's')).toThrow(/entry.linux: expected a string/);
    expect(() => parseStagedRecord(bad({ downloadOnly: 'yes' }), 's')).toThrow(/downloadOnly: expected true or false/);
    expect(() => parseStagedRecord(bad({ kind: 'bios' }), 's')).toThrow(/kind: expected "type1" or "uki"/);
    expect(() => parseStagedRecord(JSON.stringify({ kind: 'uki', stateroot: 'default', id: 'a.0' }), 's')).toThrow(/ukiFileName: expected a string/);
    const uki = { kind: 'uki' as const, stateroot: 'default', id: 'a.0', ukiFileName: 'bootc-default-a.0+3.efi', downloadOnly: true };
    expect(parseStagedRecord(renderStagedRecord(uki), 's')).toEqual(uki);
  });
});

describe('loadDeployments', () => {
  it('reads origins, entries, the command line and the staged record from files', async () => {
    const dir = testDir('deployments');
    const sysroot = join(dir, 'sysroot');
    const boot = join(dir, 'boot');
    await mkdir(join(sysroot, 'bootc/deploy/default'), { recursive: true });
    await mkdir(join(boot, 'loader/entries'), { recursive: true });
    for (const id of ['a.0', 'b.0', 'c.0']) await writeFile(join(sysroot, `bootc/deploy/default/${id}.origin`), renderOrigin(origin(id)));
    await writeFile(join(boot, 'loader/entries/bootc-default-a.0.conf'), 'title x\nversion 1\n');
    await writeFile(join(boot, 'loader/entries/bootc-default-b.0+3.conf'), 'title x\nversion 2\n');
    await writeFile(join(boot, 'loader/entries/other.conf'), 'title other\nversion 99\n');
    await writeFile(join(sysroot, 'bootc/staged'), renderStagedRecord(staged('c.0')));
    await writeFile(join(dir, 'cmdline'), 'root=UUID=x bootc.deploy=default/b.0 quiet\n');
    const view = await loadDeployments({ sysroot, boot, cmdlinePath: join(dir, 'cmdline') });
    expect(view.booted?.ref.id).toBe('b.0');
    expect(view.rollback?.ref.id).toBe('a.0');
    expect(view.staged?.ref.id).toBe('c.0');
    expect(view.nextVersion).toBe(3);
  });
});
