import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseReference } from '../../../src/oci/reference.js';
import { loadPolicy, parsePolicy, policyCandidates, policyIdentity, scopeFor, type PolicyRequirement } from '../../../src/oci/signature-policy.js';
import { findDuplicateKey } from '../../../src/oci/strict-json.js';
import { userErrorOf } from '../../support/user-error.js';
import { testDir } from '../../support/temp-tree.js';

const D = 'sha256:' + 'a'.repeat(64);
const accept = [{ type: 'insecureAcceptAnything' }];
const reject = [{ type: 'reject' }];

describe('parsePolicy: strict, like containers/image', () => {
  it('reads every requirement and signedIdentity form', () => {
    const policy = parsePolicy(
      JSON.stringify({
        default: reject,
        transports: {
          docker: {
            'a.example/gpg': [
              { type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k.gpg' },
              { type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['/a.gpg', '/b.gpg'], signedIdentity: { type: 'matchExact' } },
              { type: 'signedBy', keyType: 'GPGKeys', keyData: Buffer.from('key').toString('base64'), signedIdentity: { type: 'matchRepository' } },
            ],
            'a.example/sig': [
              { type: 'sigstoreSigned', keyPath: '/k.pub', signedIdentity: { type: 'exactReference', dockerReference: 'b.example/os:v1' } },
              { type: 'sigstoreSigned', keyData: Buffer.from('pem').toString('base64'), signedIdentity: { type: 'exactRepository', dockerRepository: 'b.example/os' } },
              { type: 'sigstoreSigned', keyPath: '/k.pub', signedIdentity: { type: 'remapIdentity', prefix: 'mirror:5000/vendor', signedPrefix: 'vendor.example' } },
              { type: 'sigstoreSigned', keyPath: '/k.pub', signedIdentity: { type: 'matchRepoDigestOrExact' } },
            ],
          },
        },
      }),
      'p.json',
    );
    const gpg = policy.transports.get('docker')!.get('a.example/gpg')!;
    expect(gpg.map((r) => r.type)).toEqual(['signedBy', 'signedBy', 'signedBy']);
    expect(gpg[0]).toEqual({ type: 'signedBy', keys: { kind: 'paths', paths: ['/k.gpg'] }, signedIdentity: { type: 'matchRepoDigestOrExact' } });
    expect((gpg[2] as Extract<PolicyRequirement, { type: 'signedBy' }>).keys).toEqual({ kind: 'data', data: [new Uint8Array(Buffer.from('key'))] });
    const sig = policy.transports.get('docker')!.get('a.example/sig')!;
    expect(sig.map((r) => (r as { signedIdentity: { type: string } }).signedIdentity.type)).toEqual(['exactReference', 'exactRepository', 'remapIdentity', 'matchRepoDigestOrExact']);
  });

  it.each([
    ['no default', { transports: {} }, /"default" requirement list is missing/],
    ['an unknown top-level field', { default: accept, extra: 1 }, /unknown field "extra"/],
    ['an empty requirement list', { default: [] }, /default is empty/],
    ['an unknown requirement type', { default: [{ type: 'trustMe' }] }, /unknown requirement type "trustMe"/],
    ['an unknown field in a requirement', { default: [{ type: 'reject', why: 'x' }] }, /unknown field "why"/],
    ['signedBy without a key', { default: [{ type: 'signedBy', keyType: 'GPGKeys' }] }, /exactly one of keyPath, keyPaths, keyData/],
    ['signedBy with two key fields', { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/a', keyData: 'YQ==' }] }, /exactly one/],
    ['signedBy without keyType', { default: [{ type: 'signedBy', keyPath: '/a' }] }, /keyType must be "GPGKeys"/],
    ['keyData that is not base64', { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyData: 'not base64!' }] }, /base64/],
    ['an unknown signedIdentity', { default: [{ type: 'sigstoreSigned', keyPath: '/a', signedIdentity: { type: 'anything' } }] }, /not a signedIdentity type/],
    ['exactReference without a tag', { default: [{ type: 'sigstoreSigned', keyPath: '/a', signedIdentity: { type: 'exactReference', dockerReference: 'q.example/os' } }] }, /needs a tag or digest/],
    ['remapIdentity with a short name', { default: [{ type: 'sigstoreSigned', keyPath: '/a', signedIdentity: { type: 'remapIdentity', prefix: 'library/busybox', signedPrefix: 'x.example' } }] }, /fully expanded/],
    ['a relative oci scope', { default: accept, transports: { oci: { 'srv/layout': accept } } }, /must be an absolute path/],
    ['the oci scope "/"', { default: accept, transports: { oci: { '/': accept } } }, /"\/" is not allowed/],
    ['a docker-archive scope', { default: accept, transports: { 'docker-archive': { '/a.tar': accept } } }, /only the transport default scope/],
  ])('refuses %s', (_what, doc, message) => {
    expect(userErrorOf(() => parsePolicy(JSON.stringify(doc), 'p.json')).message).toMatch(message);
  });

  it('refuses a key given twice', () => {
    expect(userErrorOf(() => parsePolicy('{"default": [{"type": "reject"}], "default": [{"type": "insecureAcceptAnything"}]}', 'p.json')).message).toMatch(/"default" twice/);
  });

  it.each([
    ['Fulcio', { type: 'sigstoreSigned', fulcio: { caPath: '/ca', oidcIssuer: 'https://x', subjectEmail: 'a@b' } }, /Fulcio.*not supported/],
    ['Rekor', { type: 'sigstoreSigned', keyPath: '/k.pub', rekorPublicKeyPath: '/r.pub' }, /Rekor.*not supported/],
    ['PKI', { type: 'sigstoreSigned', pki: { caRootsPath: '/ca' } }, /PKI.*not supported/],
    ['X.509 signedBy', { type: 'signedBy', keyType: 'X509Certificates', keyPath: '/c' }, /keyType "X509Certificates" is not supported/],
    ['signedBaseLayer', { type: 'signedBaseLayer', layerReference: {} }, /signedBaseLayer requirement is not supported/],
  ])('refuses %s as not supported', (_what, requirement, message) => {
    expect(userErrorOf(() => parsePolicy(JSON.stringify({ default: [requirement] }), 'p.json')).message).toMatch(message);
  });
});

describe('scope precedence: the most specific match wins', () => {
  const scopes = {
    'reg.example.com/ns/os:v1': 'repo:tag',
    [`reg.example.com/ns/os@${D}`]: 'repo@digest',
    'reg.example.com/ns/os': 'repo',
    'reg.example.com/ns': 'namespace',
    'reg.example.com': 'registry',
    '*.example.com': 'wildcard example.com',
    '*.com': 'wildcard com',
    'reg.example.com:5000': 'registry with port',
    '': 'transport default',
  };
  // Each scope gets its own single requirement, keyed by the scope name, to see which won.
  const policy = parsePolicy(
    JSON.stringify({
      default: reject,
      transports: {
        docker: Object.fromEntries(Object.entries(scopes).map(([scope, _]) => [scope, [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: `/${scope || 'default'}` }]])),
        oci: { '/srv/layouts': accept, '/srv/layouts/os:v2': reject },
        'oci-archive': { '/srv/archives/os.tar': reject },
      },
    }),
    'p.json',
  );
  const winner = (image: string): string => {
    const scope = scopeFor(policy, policyIdentity(parseReference(image)));
    if (scope.describe === 'default') return 'default';
    const path = (scope.requirements[0] as Extract<PolicyRequirement, { type: 'signedBy' }>).keys;
    const key = path.kind === 'paths' ? path.paths[0]!.slice(1) : '';
    return scopes[key === 'default' ? '' : key]!;
  };

  it.each([
    ['reg.example.com/ns/os:v1', 'repo:tag'],
    [`reg.example.com/ns/os@${D}`, 'repo@digest'],
    ['reg.example.com/ns/os:v2', 'repo'],
    ['reg.example.com/ns/other:v1', 'namespace'],
    ['reg.example.com/ns/deeper/os:v1', 'namespace'],
    ['reg.example.com/elsewhere:v1', 'registry'],
    ['sub.reg.example.com/os:v1', 'wildcard example.com'],
    ['other.example.com/os:v1', 'wildcard example.com'],
    ['example.net.com/os:v1', 'wildcard com'],
    ['reg.example.com:5000/ns/os:v1', 'registry with port'],
    ['reg.example.com:6000/x:v1', 'wildcard example.com'],
    ['quay.io/x:v1', 'transport default'],
    ['debian:12', 'transport default'],
  ])('%s → %s', (image, expected) => {
    expect(winner(image)).toBe(expected);
  });

  it('a namespace is matched by whole path components only', () => {
    expect(winner('reg.example.com/nsx/os:v1')).toBe('registry');
  });

  it('the wildcard *.example.com does not match example.com itself', () => {
    const p = parsePolicy(JSON.stringify({ default: reject, transports: { docker: { '*.example.com': accept } } }), 'p.json');
    expect(scopeFor(p, policyIdentity(parseReference('example.com/os:v1'))).describe).toBe('default');
    expect(scopeFor(p, policyIdentity(parseReference('a.example.com/os:v1'))).describe).toBe('transports.docker "*.example.com"');
  });

  it('Docker Hub short names are looked up fully expanded', () => {
    const p = parsePolicy(JSON.stringify({ default: reject, transports: { docker: { 'docker.io/library/debian': accept } } }), 'p.json');
    expect(scopeFor(p, policyIdentity(parseReference('debian:12'))).describe).toBe('transports.docker "docker.io/library/debian"');
  });

  it('oci: the directory:tag scope, then the directory and its parents', () => {
    const id = (image: string) => scopeFor(policy, policyIdentity(parseReference(image), { resolvedPath: parseReference(image).name })).describe;
    expect(id('oci:/srv/layouts/os:v2')).toBe('transports.oci "/srv/layouts/os:v2"');
    expect(id('oci:/srv/layouts/os:v1')).toBe('transports.oci "/srv/layouts"');
    expect(id('oci:/srv/other:v1')).toBe('default');
    expect(id('oci-archive:/srv/archives/os.tar')).toBe('transports.oci-archive "/srv/archives/os.tar"');
  });

  it('docker-archive has only the transport default', () => {
    const p = parsePolicy(JSON.stringify({ default: reject, transports: { 'docker-archive': { '': accept } } }), 'p.json');
    expect(scopeFor(p, policyIdentity(parseReference('docker-archive:/x.tar'))).describe).toBe('transports.docker-archive ""');
  });

  it('containers-storage: [driver@root]name:tag, the name, its namespaces, the store', () => {
    const store = { driver: 'overlay', graphRoot: '/var/lib/containers/storage' };
    const id = policyIdentity(parseReference('containers-storage:localhost/fixture:v2'), { store });
    expect(id.identity).toBe('[overlay@/var/lib/containers/storage]localhost/fixture:v2');
    expect(id.namespaces).toEqual([
      '[overlay@/var/lib/containers/storage]localhost/fixture',
      '[overlay@/var/lib/containers/storage]localhost',
      '[overlay@/var/lib/containers/storage]',
      '[/var/lib/containers/storage]',
    ]);
    const p = parsePolicy(JSON.stringify({ default: reject, transports: { 'containers-storage': { '[/var/lib/containers/storage]': accept } } }), 'p.json');
    expect(scopeFor(p, id).describe).toBe('transports.containers-storage "[/var/lib/containers/storage]"');
  });

  it('a transport without a matching scope falls to the global default', () => {
    expect(scopeFor(policy, policyIdentity(parseReference('docker-archive:/x.tar'))).describe).toBe('default');
  });
});

describe('where the policy is read from', () => {
  it('root reads /etc only; other users their own file first', () => {
    expect(policyCandidates({ uid: 0, homeDir: '/root' })).toEqual(['/etc/containers/policy.json']);
    expect(policyCandidates({ uid: 1000, homeDir: '/home/u' })).toEqual(['/home/u/.config/containers/policy.json', '/etc/containers/policy.json']);
    expect(policyCandidates({ explicit: '/x/p.json', uid: 1000 })).toEqual(['/x/p.json']);
  });

  it('a user file wins over the system one; an explicit file must exist', async () => {
    const dir = testDir('policy');
    await mkdir(join(dir, 'home/.config/containers'), { recursive: true });
    await mkdir(join(dir, 'etc/containers'), { recursive: true });
    await writeFile(join(dir, 'etc/containers/policy.json'), JSON.stringify({ default: reject }));
    expect((await loadPolicy({ uid: 1000, homeDir: join(dir, 'home'), root: dir }))!.default).toEqual([{ type: 'reject' }]);
    await writeFile(join(dir, 'home/.config/containers/policy.json'), JSON.stringify({ default: accept }));
    expect((await loadPolicy({ uid: 1000, homeDir: join(dir, 'home'), root: dir }))!.default).toEqual([{ type: 'insecureAcceptAnything' }]);
    expect(await loadPolicy({ uid: 0, root: join(dir, 'nowhere') })).toBeNull();
    await expect(loadPolicy({ explicit: join(dir, 'missing.json') })).rejects.toThrow(/cannot read the signature policy/);
  });
});

describe('findDuplicateKey', () => {
  it.each([
    ['{"a": 1, "b": {"a": 2}}', null],
    ['{"a": 1, "a": 2}', 'a'],
    ['{"x": [{"k": 1}, {"k": 2}], "y": {"k": 1, "k": 3}}', 'k'],
    ['{"s": "a\\"b", "t": "{\\"a\\": 1, \\"a\\": 2}"}', null],
    ['["a", "a"]', null],
  ])('%s → %s', (text, expected) => {
    expect(findDuplicateKey(text)).toBe(expected);
  });
});
