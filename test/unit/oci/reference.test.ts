import { describe, expect, it } from 'vitest';
import { formatReference, formatSkopeoReference, parseReference } from '../../../src/oci/reference.js';
import { UserError } from '../../../src/core/errors.js';
import type { ImageReference } from '../../../src/oci/types.js';

const D256 = 'sha256:' + 'a'.repeat(64);
const D512 = 'sha512:' + '0123456789abcdef'.repeat(8);

const valid: Array<[string, ImageReference]> = [
  ['debian', { transport: 'registry', name: 'docker.io/library/debian', registry: 'docker.io', repository: 'library/debian', tag: 'latest' }],
  ['debian:12', { transport: 'registry', name: 'docker.io/library/debian', registry: 'docker.io', repository: 'library/debian', tag: '12' }],
  ['foo/bar', { transport: 'registry', name: 'docker.io/foo/bar', registry: 'docker.io', repository: 'foo/bar', tag: 'latest' }],
  ['docker.io/debian', { transport: 'registry', name: 'docker.io/library/debian', registry: 'docker.io', repository: 'library/debian', tag: 'latest' }],
  ['index.docker.io/library/debian:12', { transport: 'registry', name: 'docker.io/library/debian', registry: 'docker.io', repository: 'library/debian', tag: '12' }],
  ['quay.io/fedora/fedora-bootc:41', { transport: 'registry', name: 'quay.io/fedora/fedora-bootc', registry: 'quay.io', repository: 'fedora/fedora-bootc', tag: '41' }],
  ['docker://quay.io/a/b', { transport: 'registry', name: 'quay.io/a/b', registry: 'quay.io', repository: 'a/b', tag: 'latest' }],
  ['registry:quay.io/a/b:1', { transport: 'registry', name: 'quay.io/a/b', registry: 'quay.io', repository: 'a/b', tag: '1' }],
  ['ostree-unverified-registry:quay.io/a/b:1', { transport: 'registry', name: 'quay.io/a/b', registry: 'quay.io', repository: 'a/b', tag: '1' }],
  ['localhost/fixture', { transport: 'registry', name: 'localhost/fixture', registry: 'localhost', repository: 'fixture', tag: 'latest' }],
  ['localhost:5000/fixture:v1', { transport: 'registry', name: 'localhost:5000/fixture', registry: 'localhost:5000', repository: 'fixture', tag: 'v1' }],
  ['127.0.0.1:5055/os/fixture:v2', { transport: 'registry', name: '127.0.0.1:5055/os/fixture', registry: '127.0.0.1:5055', repository: 'os/fixture', tag: 'v2' }],
  ['[::1]:5000/fixture:v1', { transport: 'registry', name: '[::1]:5000/fixture', registry: '[::1]:5000', repository: 'fixture', tag: 'v1' }],
  ['Registry/foo', { transport: 'registry', name: 'Registry/foo', registry: 'Registry', repository: 'foo', tag: 'latest' }],
  [`quay.io/a/b@${D256}`, { transport: 'registry', name: 'quay.io/a/b', registry: 'quay.io', repository: 'a/b', digest: D256 }],
  [`quay.io/a/b:1@${D256}`, { transport: 'registry', name: 'quay.io/a/b', registry: 'quay.io', repository: 'a/b', tag: '1', digest: D256 }],
  [`quay.io/a/b@${D512}`, { transport: 'registry', name: 'quay.io/a/b', registry: 'quay.io', repository: 'a/b', digest: D512 }],
  ['a/b__c/d-e.f_g--h:T_1.x-y', { transport: 'registry', name: 'docker.io/a/b__c/d-e.f_g--h', registry: 'docker.io', repository: 'a/b__c/d-e.f_g--h', tag: 'T_1.x-y' }],
  ['oci:/srv/layout', { transport: 'oci', name: '/srv/layout' }],
  ['oci:/srv/layout:v1', { transport: 'oci', name: '/srv/layout', tag: 'v1' }],
  ['oci:relative/dir:quay.io/a/b:1', { transport: 'oci', name: 'relative/dir', tag: 'quay.io/a/b:1' }],
  ['oci-archive:/media/os.tar', { transport: 'oci-archive', name: '/media/os.tar' }],
  ['oci-archive:/media/os.tar:v2', { transport: 'oci-archive', name: '/media/os.tar', tag: 'v2' }],
  ['docker-archive:/media/saved.tar', { transport: 'docker-archive', name: '/media/saved.tar' }],
  ['containers-storage:localhost/fixture:v1', { transport: 'containers-storage', name: 'localhost/fixture', registry: 'localhost', repository: 'fixture', tag: 'v1' }],
  ['containers-storage:fixture', { transport: 'containers-storage', name: 'docker.io/library/fixture', registry: 'docker.io', repository: 'library/fixture', tag: 'latest' }],
  [`containers-storage:${'b'.repeat(64)}`, { transport: 'containers-storage', name: 'b'.repeat(64) }],
];

describe('parseReference', () => {
  it.each(valid)('%s', (input, expected) => {
    expect(parseReference(input)).toStrictEqual(expected);
  });

  it.each(valid)('formatReference round-trips %s', (input) => {
    const ref = parseReference(input);
    const text = formatReference(ref);
    expect(parseReference(text)).toStrictEqual(ref);
    // Formatting is canonical: formatting again gives the same text.
    expect(formatReference(parseReference(text))).toBe(text);
  });

  it('formats registry references without a transport and others with one', () => {
    expect(formatReference(parseReference('debian'))).toBe('docker.io/library/debian:latest');
    expect(formatReference(parseReference('oci:/x:y'))).toBe('oci:/x:y');
    expect(formatSkopeoReference(parseReference('debian:12'))).toBe('docker://docker.io/library/debian:12');
    expect(formatSkopeoReference(parseReference('oci-archive:/a.tar'))).toBe('oci-archive:/a.tar');
  });

  it('uses the default transport only when the string names none', () => {
    expect(parseReference('/srv/layout:v1', 'oci')).toStrictEqual({ transport: 'oci', name: '/srv/layout', tag: 'v1' });
    expect(parseReference('quay.io/a/b', 'registry').transport).toBe('registry');
    expect(() => parseReference('oci:/x', 'registry')).toThrow(/names transport "oci" but "registry" was requested/);
  });

  const invalid: Array<[string, RegExp]> = [
    ['', /it is empty/],
    ['   ', /it is empty/],
    ['Debian', /must be lowercase/],
    ['quay.io/Foo/bar', /must be lowercase/],
    ['quay.io/foo//bar', /empty component/],
    ['quay.io/foo/', /empty component/],
    ['quay.io/', /repository path after the registry host is empty/],
    ['quay.io/-foo', /"-foo" is not a valid repository path component/],
    ['quay.io/foo..bar', /not a valid repository path component/],
    ['quay.io/foo___bar', /not a valid repository path component/],
    ['quay.io/a/b:', /the tag "" is not valid/],
    ['quay.io/a/b:.x', /the tag ".x" is not valid/],
    [`quay.io/a/b:${'x'.repeat(129)}`, /is not valid/],
    ['quay.io/a/b@sha256', /is not a digest/],
    ['quay.io/a/b@sha256:abc', /sha256 digest is 64 lowercase hexadecimal digits/],
    [`quay.io/a/b@sha256:${'A'.repeat(64)}`, /64 lowercase hexadecimal digits/],
    [`quay.io/a/b@md5:${'a'.repeat(32)}`, /algorithm "md5" is not supported/],
    ['quay.io/a/b@', /is not a digest/],
    ['-bad.io/a', /"-bad.io" is not a valid registry host/],
    ['bad_host.io:5000/a', /not a valid registry host/],
    ['host.io:port/a', /not a valid registry host/],
    ['a'.repeat(64), /image ID, not a repository name/],
    [`quay.io/${'a/'.repeat(130)}b`, /at most 255 are allowed/],
    ['docker:quay.io/a', /written `docker:\/\/`/],
    ['docker-daemon:foo:1', /docker-daemon transport is not supported/],
    ['dir:/tmp/x', /dir transport is not supported/],
    ['/srv/layout', /does not start with "\/"/],
    ['oci:', /OCI layout directory path is empty/],
    ['oci::tag', /OCI layout directory path is empty/],
    ['oci-archive:/x.tar:bad name', /not a valid image name inside an OCI layout/],
    ['oci:/x:a//b', /not a valid image name/],
    ['docker-archive:', /archive path is empty/],
    ['docker-archive:/x.tar:foo:1', /not supported/],
    ['containers-storage:[overlay@/var/lib]foo', /storage specifier/],
    ['containers-storage:', /image name is empty/],
    ['docker://', /image name is empty/],
    [':tag', /image name is empty/],
  ];

  it.each(invalid)('rejects %j', (input, message) => {
    let caught: unknown;
    try {
      parseReference(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    const e = caught as UserError;
    expect(e.message).toMatch(message);
    expect(e.message).toContain(`"${input}"`);
    expect(e.hint).toBeTruthy();
  });
});
