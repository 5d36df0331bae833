import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderOrigin, type Origin } from '../../../src/deploy/origin.js';
import { bootedDeployment, hostStatus, loadHostStatus, renderStatus } from '../../../src/updates/status.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const origin: Origin = {
  version: 1,
  stateroot: 'default',
  id: 'abababababab.0',
  image: { image: 'quay.io/example/os:latest', transport: 'registry' },
  manifestDigest: DIGEST,
  configDigest: `sha256:${'cd'.repeat(32)}`,
  architecture: 'amd64',
  imageVersion: '1',
  imageCreated: '2026-01-02T03:04:05.678Z',
  kernelVersion: '6.1.0-1-amd64',
  kargs: [],
  kargsFromImage: ['console=ttyS0,115200'],
  createdAt: '2026-01-03T00:00:00.000Z',
  pinned: false,
};

describe('bootedDeployment', () => {
  it('reads bootc.deploy= from the command line', () => {
    expect(bootedDeployment('root=UUID=x rw bootc.deploy=default/abababababab.0 quiet\n')).toEqual({ stateroot: 'default', id: 'abababababab.0' });
    expect(bootedDeployment('root=/dev/vda1 rw')).toBeNull();
    expect(bootedDeployment('bootc.deploy=broken')).toBeNull();
  });
});

describe('renderStatus', () => {
  const host = hostStatus(origin);
  it('human-readable: the booted image, digest, architecture and version', () => {
    expect(renderStatus(host, 'humanreadable')).toBe(
      [
        '● Booted image: quay.io/example/os:latest',
        `        Digest: ${DIGEST} (amd64)`,
        '       Version: 1 (2026-01-02T03:04:05Z)',
        '',
      ].join('\n'),
    );
  });
  it('json: canonical (sorted keys, compact) BootcHost', () => {
    const doc = JSON.parse(renderStatus(host, 'json')) as Record<string, any>;
    expect(doc['apiVersion']).toBe('org.containers.bootc/v1');
    expect(doc['spec']).toEqual({ bootOrder: 'default', image: { image: 'quay.io/example/os:latest', transport: 'registry' } });
    expect(doc['status']['booted']['image']).toEqual({
      architecture: 'amd64',
      image: { image: 'quay.io/example/os:latest', transport: 'registry' },
      imageDigest: DIGEST,
      timestamp: '2026-01-02T03:04:05.678Z',
      version: '1',
    });
    expect(renderStatus(host, 'json')).not.toContain('\n  ');
  });
  it('a system not booted by bootc', () => {
    expect(renderStatus(hostStatus(null), 'humanreadable')).toBe('System is not deployed via bootc.\n');
    expect(renderStatus(hostStatus(null), 'json')).toBe(
      '{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","metadata":{"name":"host"},"spec":{"bootOrder":"default","image":null},"status":{"booted":null,"rollback":null,"rollbackQueued":false,"staged":null,"type":null}}\n',
    );
  });
  it('yaml keeps upstream field order', () => {
    expect(renderStatus(host, 'yaml')).toMatch(/^apiVersion: org.containers.bootc\/v1\nkind: BootcHost\nmetadata:\n  name: host\nspec:\n  image:\n    image: quay.io\/example\/os:latest\n/);
  });
});

describe('loadHostStatus', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'status-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  it('reads the origin of the booted deployment under the physical root', async () => {
    mkdirSync(join(tmp, 'bootc/deploy/default'), { recursive: true });
    writeFileSync(join(tmp, 'bootc/deploy/default/abababababab.0.origin'), renderOrigin(origin));
    writeFileSync(join(tmp, 'cmdline'), 'root=UUID=x rw bootc.deploy=default/abababababab.0\n');
    const host = await loadHostStatus({ cmdlinePath: join(tmp, 'cmdline'), sysroot: tmp });
    expect(host.status.booted?.image?.imageDigest).toBe(DIGEST);
    expect(host.status.type).toBe('bootcHost');
  });
});
