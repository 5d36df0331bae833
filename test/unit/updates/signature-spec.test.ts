/**
 * `signature: containerPolicy` (upstream's ImageReference field): an image installed or
 * switched to with --enforce-container-sigpolicy keeps being held to the policy. Recorded
 * in the origin, shown by status, kept by --tag, changed by `bootc edit`.
 */
import { describe, expect, it } from 'vitest';
import { originProblem, parseOrigin, renderOrigin, withSignaturePolicy } from '../../../src/deploy/origin.js';
import { imageAndKargs } from '../../../src/install/install.js';
import { parseReference } from '../../../src/oci/reference.js';
import { describeDeployments } from '../../../src/updates/deployments.js';
import { planEdit, specOf } from '../../../src/updates/edit.js';
import { hostStatus } from '../../../src/updates/status.js';
import { retaggedImage } from '../../../src/updates/upgrade.js';
import { testOrigin } from '../../support/origin.js';

const enforced = { image: 'quay.io/example/os:v1', transport: 'registry', signature: 'containerPolicy' as const };

describe('signature: containerPolicy', () => {
  it('the origin keeps it, and refuses another value', () => {
    const origin = testOrigin('d1', { image: enforced });
    expect(parseOrigin(renderOrigin(origin), 'x.origin').image).toEqual(enforced);
    expect(parseOrigin(renderOrigin(testOrigin('d2')), 'x.origin').image).toEqual({ image: 'localhost:5000/os:latest', transport: 'registry' });
    expect(originProblem({ ...origin, image: { ...enforced, signature: 'insecure' } })).toBe('image.signature: expected "containerPolicy", found "insecure"');
  });

  it('status shows it in the spec and the image status, and leaves it out otherwise', () => {
    const v1 = testOrigin('d1', { image: enforced });
    const host = hostStatus(describeDeployments({ origins: [v1], entries: [], booted: { stateroot: 'default', id: 'd1' }, staged: null }));
    expect(host.spec.image).toEqual(enforced);
    expect(host.status.booted?.image?.image).toEqual(enforced);
    const plain = hostStatus(describeDeployments({ origins: [testOrigin('d1')], entries: [], booted: { stateroot: 'default', id: 'd1' }, staged: null }));
    expect(plain.spec.image).not.toHaveProperty('signature');
  });

  it('upgrade --tag keeps following it enforced', () => {
    expect(retaggedImage(enforced, 'v2')).toEqual({ ...enforced, image: 'quay.io/example/os:v2' });
    expect(retaggedImage({ image: 'quay.io/example/os:v1', transport: 'registry' }, 'v2')).not.toHaveProperty('signature');
  });

  it('install records it when enforcement was asked for (flag or install config key)', () => {
    const req = { image: parseReference('quay.io/example/os:v1'), kargs: [], kargDeletes: [] };
    expect(imageAndKargs(req, { installConfigKargs: [], kargDeletes: [], enforceContainerSigpolicy: true }).targetImage).toEqual(enforced);
    expect(imageAndKargs(req, { installConfigKargs: [], kargDeletes: [], enforceContainerSigpolicy: false }).targetImage).toEqual(withSignaturePolicy(enforced, false));
  });

  it('bootc edit: setting or dropping it is a switch; "insecure" means not enforced; other values are refused', () => {
    const current = { image: { image: 'quay.io/example/os:v1', transport: 'registry' }, bootOrder: 'default' as const };
    const doc = (signature?: unknown) => ({ spec: { image: { image: 'quay.io/example/os:v1', transport: 'registry', ...(signature !== undefined ? { signature } : {}) }, bootOrder: 'default' } });
    expect(planEdit(current, specOf(doc('containerPolicy'), 'host.yaml'), 'host.yaml')).toEqual({ kind: 'switch', image: enforced });
    expect(planEdit(current, specOf(doc('insecure'), 'host.yaml'), 'host.yaml')).toEqual({ kind: 'unchanged' });
    expect(planEdit({ ...current, image: enforced }, specOf(doc(), 'host.yaml'), 'host.yaml')).toEqual({ kind: 'switch', image: current.image });
    expect(() => specOf(doc({ ostreeRemote: 'fedora' }), 'host.yaml')).toThrow(/spec\.image\.signature .* is not supported/);
  });
});
