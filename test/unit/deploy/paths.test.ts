import { describe, expect, it } from 'vitest';
import { checkStateroot, deploymentId, nextSerial, sysrootPaths } from '../../../src/deploy/paths.js';
import { parseOrigin, renderOrigin, type Origin } from '../../../src/deploy/origin.js';

const digest = 'sha256:' + 'ab'.repeat(32);

describe('deployment paths and ids', () => {
  it('lays out the physical root', () => {
    const p = sysrootPaths('/sysroot');
    expect(p.deployment('default', 'x.0')).toBe('/sysroot/bootc/deploy/default/x.0');
    expect(p.origin('default', 'x.0')).toBe('/sysroot/bootc/deploy/default/x.0.origin');
    expect(p.stateVar('default')).toBe('/sysroot/bootc/state/default/var');
  });

  it('ids are the digest prefix and a serial that grows per image', () => {
    expect(deploymentId(digest, 0)).toBe('abababababab.0');
    expect(nextSerial([], digest)).toBe(0);
    expect(nextSerial(['abababababab.0', 'abababababab.3', 'cdcdcdcdcdcd.7'], digest)).toBe(4);
  });

  it('stateroot names are checked', () => {
    expect(checkStateroot('default')).toBe('default');
    expect(() => checkStateroot('../etc')).toThrow(/invalid stateroot name/);
    expect(() => checkStateroot('')).toThrow(/invalid stateroot name/);
  });
});

describe('origin record', () => {
  const origin: Origin = {
    version: 1,
    stateroot: 'default',
    id: 'abababababab.0',
    image: { image: 'quay.io/x/y:latest', transport: 'registry' },
    manifestDigest: digest,
    configDigest: digest,
    architecture: 'amd64',
    imageVersion: '1',
    imageCreated: null,
    kernelVersion: '6.1.0-50-cloud-amd64',
    kargs: ['rw', 'console=ttyS0'],
    kargsFromImage: [],
    createdAt: '2026-01-01T00:00:00.000Z',
    pinned: false,
  };

  it('round-trips', () => {
    expect(parseOrigin(renderOrigin(origin), 'x.origin')).toEqual(origin);
  });

  it('says what is wrong with a damaged record', () => {
    expect(() => parseOrigin('{', 'd.origin')).toThrow(/d.origin is not valid JSON/);
    expect(() => parseOrigin('{"version":99}', 'd.origin')).toThrow(/not a deployment record/);
    const broken = (patch: Record<string, unknown>) => renderOrigin({ ...origin, ...patch } as Origin);
    expect(() => parseOrigin(broken({ manifestDigest: 'sha256:xyz' }), 'd.origin')).toThrow(/manifestDigest: expected a sha256 digest/);
    expect(() => parseOrigin(broken({ kargs: ['rw', 3] }), 'd.origin')).toThrow(/kargs: expected an array of strings/);
    expect(() => parseOrigin(broken({ image: { image: 'x' } }), 'd.origin')).toThrow(/image\.transport: expected a string/);
    expect(() => parseOrigin(broken({ imageVersion: 2 }), 'd.origin')).toThrow(/imageVersion: expected a string or null/);
    expect(() => parseOrigin(broken({ bootType: 'bios' }), 'd.origin')).toThrow(/bootType/);
    expect(() => parseOrigin('[]', 'd.origin')).toThrow(/not a JSON object/);
  });

  it('reads records written before `pinned` and `bootType` existed', () => {
    const { pinned: _p, ...old } = origin;
    expect(parseOrigin(JSON.stringify(old), 'old.origin')).toEqual({ ...origin, pinned: false });
    expect(parseOrigin(renderOrigin({ ...origin, bootType: 'uki' }), 'u.origin').bootType).toBe('uki');
  });
});
