import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { planEdit, specOf, type HostSpec } from '../../../src/updates/edit.js';

const current: HostSpec = { image: { image: 'quay.io/example/os:latest', transport: 'registry' }, bootOrder: 'default' };
const doc = (spec: unknown) => ({ apiVersion: 'org.containers.bootc/v1', kind: 'BootcHost', metadata: { name: 'host' }, spec, status: { booted: null } });

describe('bootc edit planning', () => {
  it('a changed image is a switch, a flipped boot order a rollback, nothing changed is nothing', () => {
    expect(planEdit(current, specOf(doc({ image: { image: 'quay.io/example/os:v2', transport: 'registry' }, bootOrder: 'default' }), 'f'), 'f')).toEqual({
      kind: 'switch',
      image: { image: 'quay.io/example/os:v2', transport: 'registry' },
    });
    expect(planEdit(current, specOf(doc({ ...current, bootOrder: 'rollback' }), 'f'), 'f')).toEqual({ kind: 'rollback' });
    expect(planEdit({ ...current, bootOrder: 'rollback' }, specOf(doc({ ...current, bootOrder: 'default' }), 'f'), 'f')).toEqual({ kind: 'rollback' });
    expect(planEdit(current, specOf(doc(current), 'f'), 'f')).toEqual({ kind: 'unchanged' });
  });

  it('reads the YAML that `bootc status --format yaml` prints, status section ignored', () => {
    const yaml = [
      'apiVersion: org.containers.bootc/v1',
      'kind: BootcHost',
      'metadata:',
      '  name: host',
      'spec:',
      '  image:',
      '    image: quay.io/example/os:v3',
      '    transport: registry',
      '  bootOrder: default',
      'status:',
      '  rollbackQueued: false',
    ].join('\n');
    expect(planEdit(current, specOf(parse(yaml), 'host.yaml'), 'host.yaml').kind).toBe('switch');
  });

  it('refuses what it cannot apply, naming the file and the key', () => {
    expect(() => specOf(doc({ ...current, pinned: true }), 'host.yaml')).toThrow(/host.yaml: unknown key spec.pinned/);
    expect(() => specOf(doc({ ...current, bootOrder: 'first' }), 'h')).toThrow(/spec.bootOrder must be "default" or "rollback"/);
    expect(() => specOf({ kind: 'Pod', spec: {} }, 'h')).toThrow(/unsupported kind "Pod"/);
    expect(() => specOf('text', 'h')).toThrow(/not a BootcHost document/);
    expect(() => specOf({ metadata: {} }, 'h')).toThrow(/no spec/);
    expect(() => planEdit(current, specOf(doc({ image: null, bootOrder: 'default' }), 'h'), 'h')).toThrow(/spec.image cannot be removed/);
    expect(() =>
      planEdit(current, specOf(doc({ image: { image: 'other', transport: 'registry' }, bootOrder: 'rollback' }), 'h'), 'h'),
    ).toThrow(/cannot change in one edit/);
  });
});
