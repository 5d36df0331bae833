import { describe, expect, it } from 'vitest';
import { parseEntryFileName } from '../../../src/boot/bls.js';
import type { Origin } from '../../../src/deploy/origin.js';
import { describeDeployments, type EntryOnEsp, type StagedRecord } from '../../../src/updates/deployments.js';
import type { CachedUpdate } from '../../../src/updates/update-records.js';
import { bootedDeployment } from '../../../src/updates/booted.js';
import { bootStateOf, hostStatus, onlyBooted, renderStatus, sysrootReadOnly, usrOverlayOf, type StatusRecords } from '../../../src/updates/status.js';
import { parseMountinfo } from '../../../src/core/mountinfo.js';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const IMAGE = 'quay.io/example/os:latest';

function origin(id: string, d: string, version: string | null, created: string | null = '2026-01-02T03:04:05.678Z'): Origin {
  return {
    version: 1,
    stateroot: 'default',
    id,
    image: { image: IMAGE, transport: 'registry' },
    manifestDigest: digest(d),
    configDigest: digest('c'),
    architecture: 'amd64',
    imageVersion: version,
    imageCreated: created,
    kernelVersion: '6.1.0-1-amd64',
    kargs: [],
    kargsFromImage: [],
    createdAt: '2026-01-03T00:00:00.000Z',
    pinned: false,
  };
}

const entry = (fileName: string, version: string): EntryOnEsp => ({ fileName, name: parseEntryFileName(fileName)!, version });

const stagedRecord = (id: string, extra: { downloadOnly?: boolean } = {}): StagedRecord => ({
  stateroot: 'default',
  id,
  entryFileName: `bootc-default-${id}+3.conf`,
  entry: { title: 'Debian', sortKey: 'bootc', linux: `/bootc/${id}/vmlinuz`, initrd: `/bootc/${id}/initrd.img`, options: 'root=UUID=x' },
  ...extra,
});

const v1 = origin('aaaaaaaaaaaa.0', 'a', '1', '2026-01-01T00:00:00Z');
const v2 = origin('bbbbbbbbbbbb.0', 'b', '2');
const v3 = origin('cccccccccccc.0', 'c', '3', '2026-02-01T10:20:30.5Z');
const ref = (o: Origin) => ({ stateroot: o.stateroot, id: o.id });

/** v2 booted and blessed, v1 its rollback: the state after one finalised upgrade. */
const upgraded = () =>
  describeDeployments({
    origins: [v1, v2],
    entries: [entry(`bootc-default-${v1.id}.conf`, '1'), entry(`bootc-default-${v2.id}.conf`, '2')],
    booted: ref(v2),
    staged: null,
  });

const records = (partial: Partial<StatusRecords> = {}): StatusRecords => ({ cachedUpdate: null, etcConflicts: {}, ...partial });

describe('bootedDeployment', () => {
  it('reads bootc.deploy= from the command line', () => {
    expect(bootedDeployment('root=UUID=x rw bootc.deploy=default/abababababab.0 quiet\n')).toEqual({ stateroot: 'default', id: 'abababababab.0' });
    expect(bootedDeployment('root=/dev/vda1 rw')).toBeNull();
    expect(bootedDeployment('bootc.deploy=broken')).toBeNull();
  });
});

describe('bootStateOf', () => {
  it('no counter is good, tries left is pending, none left is bad', () => {
    expect(bootStateOf(undefined)).toBe('good');
    expect(bootStateOf({ triesLeft: 3 })).toBe('pending');
    expect(bootStateOf({ triesLeft: 1, triesDone: 2 })).toBe('pending');
    expect(bootStateOf({ triesLeft: 0, triesDone: 3 })).toBe('bad');
  });
});

describe('status: booted only', () => {
  const host = hostStatus(
    describeDeployments({ origins: [v2], entries: [entry(`bootc-default-${v2.id}.conf`, '1')], booted: ref(v2), staged: null }),
    records(),
  );

  it('human-readable: image, digest, architecture, version', async () => {
    expect(await renderStatus(host, 'humanreadable')).toBe(
      ['● Booted image: quay.io/example/os:latest', `        Digest: ${digest('b')} (amd64)`, '       Version: 2 (2026-01-02T03:04:05Z)', ''].join('\n'),
    );
  });

  it('verbose adds the stateroot, deployment and boot entry', async () => {
    expect(await renderStatus(host, 'humanreadable', { verbose: true })).toBe(
      [
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${digest('b')} (amd64)`,
        '       Version: 2 (2026-01-02T03:04:05Z)',
        '          Boot: good',
        '     StateRoot: default',
        '    Deployment: bbbbbbbbbbbb.0',
        '    Boot entry: bootc-default-bbbbbbbbbbbb.0.conf',
        '',
      ].join('\n'),
    );
  });

  it('json: canonical BootcHost, our additions under `deployment`', async () => {
    expect(await renderStatus(host, 'json')).toBe(
      JSON.stringify({
        apiVersion: 'org.containers.bootc/v1',
        kind: 'BootcHost',
        metadata: { name: 'host' },
        spec: { bootOrder: 'default', image: { image: IMAGE, transport: 'registry' } },
        status: {
          booted: {
            cachedUpdate: null,
            composefs: null,
            deployment: {
              bootCounting: null,
              bootEntry: `bootc-default-${v2.id}.conf`,
              bootState: 'good',
              etcConflicts: [],
              id: v2.id,
              stateroot: 'default',
            },
            downloadOnly: false,
            image: {
              architecture: 'amd64',
              image: { image: IMAGE, transport: 'registry' },
              imageDigest: digest('b'),
              timestamp: '2026-01-02T03:04:05.678Z',
              version: '2',
            },
            incompatible: false,
            ostree: null,
            pinned: false,
            softRebootCapable: false,
            store: null,
          },
          readOnly: false,
          rollback: null,
          rollbackQueued: false,
          staged: null,
          type: 'bootcHost',
          usrOverlay: null,
        },
      }) + '\n',
    );
  });

  it('yaml: upstream field order, ours last in each entry', async () => {
    expect(await renderStatus(host, 'yaml')).toBe(
      [
        'apiVersion: org.containers.bootc/v1',
        'kind: BootcHost',
        'metadata:',
        '  name: host',
        'spec:',
        '  image:',
        '    image: quay.io/example/os:latest',
        '    transport: registry',
        '  bootOrder: default',
        'status:',
        '  staged: null',
        '  booted:',
        '    image:',
        '      image:',
        '        image: quay.io/example/os:latest',
        '        transport: registry',
        '      version: "2"',
        '      timestamp: 2026-01-02T03:04:05.678Z',
        `      imageDigest: ${digest('b')}`,
        '      architecture: amd64',
        '    cachedUpdate: null',
        '    incompatible: false',
        '    pinned: false',
        '    softRebootCapable: false',
        '    downloadOnly: false',
        '    store: null',
        '    ostree: null',
        '    composefs: null',
        '    deployment:',
        '      stateroot: default',
        '      id: bbbbbbbbbbbb.0',
        '      bootEntry: bootc-default-bbbbbbbbbbbb.0.conf',
        '      bootCounting: null',
        '      bootState: good',
        '      etcConflicts: []',
        '  rollback: null',
        '  rollbackQueued: false',
        '  type: bootcHost',
        '  usrOverlay: null',
        '  readOnly: false',
        '',
      ].join('\n'),
    );
  });
});

describe('status: a system not deployed by bootc', () => {
  it('says so, and the document is upstream’s empty one', async () => {
    expect(await renderStatus(hostStatus(null), 'humanreadable')).toBe('System is not deployed via bootc.\n');
    expect(await renderStatus(hostStatus(null), 'json')).toBe(
      '{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","metadata":{"name":"host"},"spec":{"bootOrder":"default","image":null},"status":{"booted":null,"rollback":null,"rollbackQueued":false,"staged":null,"type":null}}\n',
    );
  });
});

describe('status: booted + staged (download-only)', () => {
  const view = describeDeployments({
    origins: [v1, v2, v3],
    entries: [entry(`bootc-default-${v1.id}.conf`, '1'), entry(`bootc-default-${v2.id}.conf`, '2')],
    booted: ref(v2),
    staged: stagedRecord(v3.id, { downloadOnly: true }),
  });
  const host = hostStatus(view, records());

  it('human-readable: staged first, then booted, then rollback', async () => {
    expect(await renderStatus(host, 'humanreadable')).toBe(
      [
        '  Staged image: quay.io/example/os:latest',
        `        Digest: ${digest('c')} (amd64)`,
        '       Version: 3 (2026-02-01T10:20:30Z)',
        ' Download-only: yes; not applied at reboot until `bootc upgrade --from-downloaded`',
        '',
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${digest('b')} (amd64)`,
        '       Version: 2 (2026-01-02T03:04:05Z)',
        '',
        '  Rollback image: quay.io/example/os:latest',
        `          Digest: ${digest('a')} (amd64)`,
        '         Version: 1 (2026-01-01T00:00:00Z)',
        '',
      ].join('\n'),
    );
  });

  it('document: downloadOnly on the staged entry, its counter from the staged record', () => {
    expect(host.status.staged?.downloadOnly).toBe(true);
    expect(host.status.staged?.deployment).toEqual({
      stateroot: 'default',
      id: v3.id,
      bootEntry: null,
      bootCounting: { triesLeft: 3, triesDone: 0 },
      bootState: 'pending',
      etcConflicts: [],
    });
    expect(host.status.booted?.downloadOnly).toBe(false);
  });

  it('a staged deployment that is not download-only says nothing more, and verbose says so', async () => {
    const plain = hostStatus(describeDeployments({ ...viewState(), staged: stagedRecord(v3.id) }), records());
    expect(plain.status.staged?.downloadOnly).toBe(false);
    const text = await renderStatus(plain, 'humanreadable', { verbose: true });
    expect(text).toMatch(/^ {2}Staged image/);
    expect(text).toContain(
      [
        '  Staged image: quay.io/example/os:latest',
        `        Digest: ${digest('c')} (amd64)`,
        '       Version: 3 (2026-02-01T10:20:30Z)',
        '          Boot: pending',
        '     StateRoot: default',
        '    Deployment: cccccccccccc.0',
        '    Boot entry: written at shutdown',
        ' Download-only: no',
        '',
      ].join('\n'),
    );
  });

  it('the spec follows the staged image (a staged `bootc switch` changes what is followed)', () => {
    const switched = { ...v3, image: { image: '/var/mnt/os.oci', transport: 'oci' } };
    const h = hostStatus(describeDeployments({ ...viewState(), origins: [v1, v2, switched], staged: stagedRecord(v3.id) }), records());
    expect(h.spec.image).toEqual({ image: '/var/mnt/os.oci', transport: 'oci' });
  });

  it('--booted keeps only the booted entry, in every format', async () => {
    const booted = onlyBooted(host);
    expect(booted.status.staged).toBeNull();
    expect(booted.status.rollback).toBeNull();
    expect(await renderStatus(booted, 'humanreadable')).toBe(
      ['● Booted image: quay.io/example/os:latest', `        Digest: ${digest('b')} (amd64)`, '       Version: 2 (2026-01-02T03:04:05Z)', ''].join('\n'),
    );
    expect(JSON.parse(await renderStatus(booted, 'json')).status.staged).toBeNull();
  });

  function viewState() {
    return {
      origins: [v1, v2, v3],
      entries: [entry(`bootc-default-${v1.id}.conf`, '1'), entry(`bootc-default-${v2.id}.conf`, '2')],
      booted: ref(v2),
      staged: null as StagedRecord | null,
    };
  }
});

describe('status: booted + rollback', () => {
  const host = hostStatus(upgraded(), records());

  it('human-readable', async () => {
    expect(await renderStatus(host, 'humanreadable')).toBe(
      [
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${digest('b')} (amd64)`,
        '       Version: 2 (2026-01-02T03:04:05Z)',
        '',
        '  Rollback image: quay.io/example/os:latest',
        `          Digest: ${digest('a')} (amd64)`,
        '         Version: 1 (2026-01-01T00:00:00Z)',
        '',
      ].join('\n'),
    );
    expect(host.spec.bootOrder).toBe('default');
    expect(host.status.rollbackQueued).toBe(false);
    expect(host.status.rollback?.deployment.id).toBe(v1.id);
  });

  it('an image without a version label shows its timestamp; one with neither shows only the digest', async () => {
    const bare = describeDeployments({
      origins: [origin('dddddddddddd.0', 'd', null), origin('eeeeeeeeeeee.0', 'e', null, null)],
      entries: [entry('bootc-default-dddddddddddd.0.conf', '2'), entry('bootc-default-eeeeeeeeeeee.0.conf', '1')],
      booted: { stateroot: 'default', id: 'dddddddddddd.0' },
      staged: null,
    });
    expect(await renderStatus(hostStatus(bare), 'humanreadable')).toBe(
      [
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${digest('d')} (amd64)`,
        '     Timestamp: 2026-01-02T03:04:05Z',
        '',
        '  Rollback image: quay.io/example/os:latest',
        `          Digest: ${digest('e')} (amd64)`,
        '',
      ].join('\n'),
    );
  });

  it('a non-registry transport is shown before the name, a pinned deployment says so', async () => {
    const pinned = { ...v1, pinned: true, image: { image: '/var/mnt/usb/os.oci:v1', transport: 'oci' } };
    const h = hostStatus(describeDeployments({ origins: [pinned, v2], entries: [entry(`bootc-default-${v1.id}.conf`, '1'), entry(`bootc-default-${v2.id}.conf`, '2')], booted: ref(v2), staged: null }));
    expect(await renderStatus(h, 'humanreadable')).toContain(
      ['  Rollback image: oci:/var/mnt/usb/os.oci:v1', `          Digest: ${digest('a')} (amd64)`, '         Version: 1 (2026-01-01T00:00:00Z)', '          Pinned: yes', ''].join('\n'),
    );
    expect(h.status.rollback?.pinned).toBe(true);
  });
});

describe('status: rollback queued', () => {
  const view = describeDeployments({
    origins: [v1, v2],
    entries: [entry(`bootc-default-${v1.id}.conf`, '3'), entry(`bootc-default-${v2.id}.conf`, '2')],
    booted: ref(v2),
    staged: null,
  });
  const host = hostStatus(view, records());

  it('spec.bootOrder is rollback and the rollback entry says it boots next', async () => {
    expect(host.spec.bootOrder).toBe('rollback');
    expect(host.status.rollbackQueued).toBe(true);
    expect(await renderStatus(host, 'humanreadable')).toBe(
      [
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${digest('b')} (amd64)`,
        '       Version: 2 (2026-01-02T03:04:05Z)',
        '',
        '  Rollback image: quay.io/example/os:latest',
        `          Digest: ${digest('a')} (amd64)`,
        '         Version: 1 (2026-01-01T00:00:00Z)',
        '       Next boot: yes, rollback queued (`bootc rollback` again undoes it)',
        '',
      ].join('\n'),
    );
  });

  it('yaml and json carry it in spec and status', async () => {
    expect(await renderStatus(host, 'yaml')).toMatch(/^spec:\n {2}image:\n {4}image: quay.io\/example\/os:latest\n {4}transport: registry\n {2}bootOrder: rollback\n/m);
    expect(await renderStatus(host, 'yaml')).toMatch(/^ {2}rollbackQueued: true$/m);
    const doc = JSON.parse(await renderStatus(host, 'json'));
    expect([doc.spec.bootOrder, doc.status.rollbackQueued]).toEqual(['rollback', true]);
  });
});

describe('status: cached update', () => {
  const update: CachedUpdate = {
    image: { image: IMAGE, transport: 'registry' },
    version: '3',
    timestamp: '2026-02-01T10:20:30.5Z',
    imageDigest: digest('c'),
    architecture: 'amd64',
  };

  it('shown on the booted entry when neither booted nor staged is that image', async () => {
    const host = hostStatus(upgraded(), records({ cachedUpdate: update }));
    expect(host.status.booted?.cachedUpdate).toEqual(update);
    expect(host.status.rollback?.cachedUpdate).toBeNull();
    expect(await renderStatus(onlyBooted(host), 'humanreadable')).toBe(
      [
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${digest('b')} (amd64)`,
        '       Version: 2 (2026-01-02T03:04:05Z)',
        ' UpdateVersion: 3 (2026-02-01T10:20:30Z)',
        `  UpdateDigest: ${digest('c')}`,
        '',
      ].join('\n'),
    );
    expect(await renderStatus(onlyBooted(host), 'yaml')).toContain(
      ['    cachedUpdate:', '      image:', `        image: ${IMAGE}`, '        transport: registry', '      version: "3"', '      timestamp: 2026-02-01T10:20:30.5Z', `      imageDigest: ${digest('c')}`, '      architecture: amd64', ''].join('\n'),
    );
  });

  it('without a version: "Update: Available"', async () => {
    const host = hostStatus(upgraded(), records({ cachedUpdate: { ...update, version: null } }));
    expect(await renderStatus(onlyBooted(host), 'humanreadable')).toContain(`        Update: Available\n  UpdateDigest: ${digest('c')}\n`);
  });

  it('dropped once that image is staged or booted', () => {
    const staged = describeDeployments({
      origins: [v1, v2, v3],
      entries: [entry(`bootc-default-${v1.id}.conf`, '1'), entry(`bootc-default-${v2.id}.conf`, '2')],
      booted: ref(v2),
      staged: stagedRecord(v3.id),
    });
    expect(hostStatus(staged, records({ cachedUpdate: update })).status.booted?.cachedUpdate).toBeNull();
    expect(hostStatus(upgraded(), records({ cachedUpdate: { ...update, imageDigest: digest('b') } })).status.booted?.cachedUpdate).toBeNull();
  });
});

describe('status: a deployment that failed boot assessment', () => {
  // `bootc switch` to v3, which never reached boot-complete.target: after three tries
  // systemd-boot sorted its entry last and v2 booted again.
  const view = describeDeployments({
    origins: [v2, v3],
    entries: [entry(`bootc-default-${v2.id}.conf`, '2'), entry(`bootc-default-${v3.id}+0-3.conf`, '3')],
    booted: ref(v2),
    staged: null,
  });
  const host = hostStatus(view, records());

  it('is the rollback entry, marked bad, and not queued', async () => {
    expect(host.status.rollbackQueued).toBe(false);
    expect(host.status.rollback?.deployment).toMatchObject({ id: v3.id, bootState: 'bad', bootCounting: { triesLeft: 0, triesDone: 3 } });
    expect(await renderStatus(host, 'humanreadable')).toBe(
      [
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${digest('b')} (amd64)`,
        '       Version: 2 (2026-01-02T03:04:05Z)',
        '',
        '  Rollback image: quay.io/example/os:latest',
        `          Digest: ${digest('c')} (amd64)`,
        '         Version: 3 (2026-02-01T10:20:30Z)',
        '            Boot: failed 3 attempts; not booted by default',
        '',
      ].join('\n'),
    );
    expect(JSON.parse(await renderStatus(host, 'json')).status.rollback.deployment.bootState).toBe('bad');
  });

  it('a booted deployment still on trial says how many tries it has left', async () => {
    const trial = describeDeployments({
      origins: [v2, v3],
      entries: [entry(`bootc-default-${v2.id}.conf`, '2'), entry(`bootc-default-${v3.id}+2-1.conf`, '3')],
      booted: ref(v3),
      staged: null,
    });
    const h = hostStatus(trial, records());
    expect(h.status.booted?.deployment.bootState).toBe('pending');
    expect(await renderStatus(onlyBooted(h), 'humanreadable')).toContain('          Boot: not yet marked good (2 tries left)\n');
  });
});

describe('status: /etc merge conflicts', () => {
  const conflicts = [
    '/etc/ssh/sshd_config: changed locally and in the new image; local version kept',
    '/etc/motd: deleted locally, changed in the new image; stays deleted',
  ];
  const host = hostStatus(upgraded(), records({ etcConflicts: { [`default/${v2.id}`]: conflicts } }));

  it('listed on the deployment that was finalised with them', async () => {
    expect(host.status.booted?.deployment.etcConflicts).toEqual(conflicts);
    expect(host.status.rollback?.deployment.etcConflicts).toEqual([]);
    expect(await renderStatus(onlyBooted(host), 'humanreadable')).toBe(
      [
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${digest('b')} (amd64)`,
        '       Version: 2 (2026-01-02T03:04:05Z)',
        `/etc conflicts: ${conflicts[0]}`,
        `                ${conflicts[1]}`,
        '',
      ].join('\n'),
    );
    expect(await renderStatus(onlyBooted(host), 'yaml')).toContain(
      ['      etcConflicts:', `        - "${conflicts[0]}"`, `        - "${conflicts[1]}"`, ''].join('\n'),
    );
  });
});

describe('status: everything at once', () => {
  // v3 failed its tries, v2 booted again, an update (v4) is staged download-only, `--check`
  // already saw a v5, and v2's finalisation kept one local /etc file.
  const v4 = origin('dddddddddddd.0', 'd', '4', null);
  const view = describeDeployments({
    origins: [v2, v3, v4],
    entries: [entry(`bootc-default-${v2.id}.conf`, '2'), entry(`bootc-default-${v3.id}+0-3.conf`, '3')],
    booted: ref(v2),
    staged: stagedRecord(v4.id, { downloadOnly: true }),
  });
  const host = hostStatus(
    view,
    records({
      cachedUpdate: { image: { image: IMAGE, transport: 'registry' }, version: '5', timestamp: null, imageDigest: digest('e'), architecture: 'amd64' },
      etcConflicts: { [`default/${v2.id}`]: ['/etc/hosts: changed locally and in the new image; local version kept'] },
    }),
  );

  it('human-readable, verbose', async () => {
    expect(await renderStatus(host, 'humanreadable', { verbose: true })).toBe(
      [
        '  Staged image: quay.io/example/os:latest',
        `        Digest: ${digest('d')} (amd64)`,
        '       Version: 4',
        ' Download-only: yes; not applied at reboot until `bootc upgrade --from-downloaded`',
        '          Boot: pending',
        '     StateRoot: default',
        '    Deployment: dddddddddddd.0',
        '    Boot entry: written at shutdown',
        '',
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${digest('b')} (amd64)`,
        '       Version: 2 (2026-01-02T03:04:05Z)',
        ' UpdateVersion: 5',
        `  UpdateDigest: ${digest('e')}`,
        '          Boot: good',
        '/etc conflicts: /etc/hosts: changed locally and in the new image; local version kept',
        '     StateRoot: default',
        '    Deployment: bbbbbbbbbbbb.0',
        '    Boot entry: bootc-default-bbbbbbbbbbbb.0.conf',
        '',
        '  Rollback image: quay.io/example/os:latest',
        `          Digest: ${digest('c')} (amd64)`,
        '         Version: 3 (2026-02-01T10:20:30Z)',
        '            Boot: failed 3 attempts; not booted by default',
        '       StateRoot: default',
        '      Deployment: cccccccccccc.0',
        '      Boot entry: bootc-default-cccccccccccc.0+0-3.conf',
        '',
      ].join('\n'),
    );
  });

  it('yaml', async () => {
    const entryYaml = (o: Origin, lines: string[]): string[] => [
      '    image:',
      '      image:',
      '        image: quay.io/example/os:latest',
      '        transport: registry',
      `      version: "${o.imageVersion}"`,
      `      timestamp: ${o.imageCreated ?? 'null'}`,
      `      imageDigest: ${o.manifestDigest}`,
      '      architecture: amd64',
      ...lines,
    ];
    const fixed = ['    incompatible: false', '    pinned: false', '    softRebootCapable: false'];
    const tail = ['    store: null', '    ostree: null', '    composefs: null', '    deployment:', '      stateroot: default'];
    expect(await renderStatus(host, 'yaml')).toBe(
      [
        'apiVersion: org.containers.bootc/v1',
        'kind: BootcHost',
        'metadata:',
        '  name: host',
        'spec:',
        '  image:',
        '    image: quay.io/example/os:latest',
        '    transport: registry',
        '  bootOrder: default',
        'status:',
        '  staged:',
        ...entryYaml(v4, [
          '    cachedUpdate: null',
          ...fixed,
          '    downloadOnly: true',
          ...tail,
          `      id: ${v4.id}`,
          '      bootEntry: null',
          '      bootCounting:',
          '        triesLeft: 3',
          '        triesDone: 0',
          '      bootState: pending',
          '      etcConflicts: []',
        ]),
        '  booted:',
        ...entryYaml(v2, [
          '    cachedUpdate:',
          '      image:',
          '        image: quay.io/example/os:latest',
          '        transport: registry',
          '      version: "5"',
          '      timestamp: null',
          `      imageDigest: ${digest('e')}`,
          '      architecture: amd64',
          ...fixed,
          '    downloadOnly: false',
          ...tail,
          `      id: ${v2.id}`,
          `      bootEntry: bootc-default-${v2.id}.conf`,
          '      bootCounting: null',
          '      bootState: good',
          '      etcConflicts:',
          '        - "/etc/hosts: changed locally and in the new image; local version kept"',
        ]),
        '  rollback:',
        ...entryYaml(v3, [
          '    cachedUpdate: null',
          ...fixed,
          '    downloadOnly: false',
          ...tail,
          `      id: ${v3.id}`,
          `      bootEntry: bootc-default-${v3.id}+0-3.conf`,
          '      bootCounting:',
          '        triesLeft: 0',
          '        triesDone: 3',
          '      bootState: bad',
          '      etcConflicts: []',
        ]),
        '  rollbackQueued: false',
        '  type: bootcHost',
        '  usrOverlay: null',
        '  readOnly: false',
        '',
      ].join('\n'),
    );
  });
});

describe('status: /usr overlay and a read-only physical root, from the mount table', () => {
  // A booted deployment as prepare-root leaves it, then what `mount -t overlay` on /usr adds.
  const base = [
    '24 1 254:3 /bootc/deploy/default/bbbbbbbbbbbb.0 / rw,relatime shared:1 - ext4 /dev/vda3 rw',
    '25 24 254:3 /bootc/deploy/default/bbbbbbbbbbbb.0/usr /usr ro,relatime shared:2 - ext4 /dev/vda3 rw',
    '26 24 254:3 / /sysroot rw,relatime shared:3 - ext4 /dev/vda3 rw',
    '27 24 0:25 / /run rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,mode=755',
  ];
  const overlay = (upper: string, flags = 'rw,relatime') =>
    `40 25 0:40 / /usr ${flags} shared:20 - overlay overlay rw,lowerdir=/usr,upperdir=${upper},workdir=${upper.replace(/upper$/, 'work')}`;

  it('none on a plain deployment; the sysroot as mounted', () => {
    const mounts = parseMountinfo(base.join('\n'));
    expect(usrOverlayOf(mounts)).toBeNull();
    expect(sysrootReadOnly(mounts, '/sysroot')).toBe(false);
    expect(sysrootReadOnly(parseMountinfo(base.join('\n').replace('/ /sysroot rw,', '/ /sysroot ro,')), '/sysroot')).toBe(true);
    expect(sysrootReadOnly(mounts, '/elsewhere')).toBe(false);
  });

  it('an overlay whose upper directory is on a tmpfs is transient; on the disk, persistent; mounted ro, read-only', () => {
    expect(usrOverlayOf(parseMountinfo([...base, overlay('/run/usr-overlay/upper')].join('\n')))).toEqual({ accessMode: 'readWrite', persistence: 'transient' });
    expect(usrOverlayOf(parseMountinfo([...base, overlay('/sysroot/usr-overlay/upper')].join('\n')))).toEqual({ accessMode: 'readWrite', persistence: 'persistent' });
    expect(usrOverlayOf(parseMountinfo([...base, overlay('/run/usr-overlay/upper', 'ro,relatime')].join('\n')))).toEqual({ accessMode: 'readOnly', persistence: 'transient' });
  });

  it('the document and the booted entry say so', async () => {
    const host = hostStatus(
      describeDeployments({ origins: [v2], entries: [entry(`bootc-default-${v2.id}.conf`, '1')], booted: ref(v2), staged: null }),
      { ...records(), usrOverlay: { accessMode: 'readWrite', persistence: 'transient' }, readOnly: true },
    );
    expect(host.status.usrOverlay).toEqual({ accessMode: 'readWrite', persistence: 'transient' });
    expect(host.status.readOnly).toBe(true);
    expect(await renderStatus(host, 'humanreadable')).toContain('  /usr overlay: transient, read/write\n');
  });
});
