/**
 * `bootc status` over a physical root laid out on disk as install and upgrade leave it:
 * origins, ESP entries with boot counters, the staged record, the cached update and the
 * /etc conflicts, read through the same SysrootLocations the update commands take.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { runStatus } from '../../../src/cli/status.js';
import { renderOrigin, type Origin } from '../../../src/deploy/origin.js';
import { renderStagedRecord, type SysrootLocations } from '../../../src/updates/deployments.js';
import { loadHostStatus } from '../../../src/updates/status.js';
import { recordCachedUpdate, recordEtcConflicts } from '../../../src/updates/update-records.js';
import { testOrigin } from '../../support/origin.js';
import { testDir } from '../../support/temp-tree.js';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;

const origin = (id: string, d: string, version: string): Origin => testOrigin(id, { manifestDigest: digest(d), configDigest: digest('f'), imageVersion: version });

/** Collects what the command writes, and claims to be a terminal or not. */
class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('loadHostStatus over an on-disk sysroot', () => {
  let dir = '';
  let loc: SysrootLocations;
  const a = origin('aaaaaaaaaaaa.0', 'a', '1');
  const b = origin('bbbbbbbbbbbb.0', 'b', '2');
  const c = origin('cccccccccccc.0', 'c', '3');

  beforeEach(async () => {
    dir = testDir('status');
    loc = { sysroot: join(dir, 'sysroot'), boot: join(dir, 'boot'), cmdlinePath: join(dir, 'cmdline') };
    await mkdir(join(loc.sysroot, 'bootc/deploy/default'), { recursive: true });
    await mkdir(join(loc.boot, 'loader/entries'), { recursive: true });
    for (const o of [a, b, c]) await writeFile(join(loc.sysroot, `bootc/deploy/default/${o.id}.origin`), renderOrigin(o));
    await writeFile(join(loc.boot, `loader/entries/bootc-default-${a.id}+0-3.conf`), 'title v1\nversion 3\n');
    await writeFile(join(loc.boot, `loader/entries/bootc-default-${b.id}.conf`), 'title v2\nversion 2\n');
    await writeFile(loc.cmdlinePath, `root=UUID=x rw bootc.deploy=default/${b.id}\n`);
  });

  it('booted, a rollback that failed its tries, a download-only staged update, conflicts and a cached update', async () => {
    await writeFile(
      join(loc.sysroot, 'bootc/staged'),
      renderStagedRecord({
        stateroot: 'default',
        id: c.id,
        entryFileName: `bootc-default-${c.id}+3.conf`,
        entry: { title: 'v3', sortKey: 'bootc', linux: '/l', initrd: '/i', options: 'root=UUID=x' },
        downloadOnly: true,
      }),
    );
    await recordEtcConflicts(loc.sysroot, 'default', b.id, ['/etc/motd: changed locally and in the new image; local version kept']);
    await recordCachedUpdate(loc.sysroot, { image: b.image, version: '4', timestamp: null, imageDigest: digest('d'), architecture: 'amd64' });

    const host = await loadHostStatus(loc);
    expect(host.status.type).toBe('bootcHost');
    expect(host.status.booted?.image?.imageDigest).toBe(digest('b'));
    expect(host.status.booted?.deployment.etcConflicts).toEqual(['/etc/motd: changed locally and in the new image; local version kept']);
    expect(host.status.booted?.cachedUpdate?.imageDigest).toBe(digest('d'));
    expect(host.status.staged?.deployment.id).toBe(c.id);
    expect(host.status.staged?.downloadOnly).toBe(true);
    expect(host.status.rollback?.deployment).toMatchObject({ id: a.id, bootState: 'bad', bootEntry: `bootc-default-${a.id}+0-3.conf` });
    expect(host.status.rollbackQueued).toBe(false);
  });

  it('a rollback ordered first is queued; the CLI renders YAML when not on a terminal', async () => {
    // `bootc rollback` gave v1's entry a version above the booted v2's.
    await rm(join(loc.boot, 'loader/entries'), { recursive: true });
    await mkdir(join(loc.boot, 'loader/entries'));
    await writeFile(join(loc.boot, `loader/entries/bootc-default-${a.id}.conf`), 'title v1\nversion 5\n');
    await writeFile(join(loc.boot, `loader/entries/bootc-default-${b.id}.conf`), 'title v2\nversion 4\n');
    const host = await loadHostStatus(loc);
    expect(host.spec.bootOrder).toBe('rollback');

    const piped = new Capture(false);
    await runStatus({}, piped, loc);
    expect(piped.text).toMatch(/^ {2}bootOrder: rollback$/m);
    const tty = new Capture(true);
    await runStatus({ booted: true }, tty, loc);
    expect(tty.text).toBe(`● Booted image: localhost:5000/os:latest\n        Digest: ${digest('b')} (amd64)\n       Version: 2\n`);
  });

  it('a command line without bootc.deploy= is a foreign system, whatever lies under /sysroot', async () => {
    await writeFile(loc.cmdlinePath, 'root=/dev/vda1 rw quiet\n');
    const out = new Capture(true);
    await runStatus({}, out, loc);
    expect(out.text).toBe('System is not deployed via bootc.\n');
    const json = new Capture(false);
    await runStatus({ format: 'json' }, json, loc);
    expect(JSON.parse(json.text).status.booted).toBeNull();
  });

  it('an unsupported --format-version is refused with a hint', async () => {
    await expect(runStatus({ formatVersion: 2 }, new Capture(false), loc)).rejects.toThrow(/Unsupported format version: 2/);
  });
});
