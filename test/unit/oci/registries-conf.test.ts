import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  emptyRegistriesConfig,
  isLoopbackHost,
  loadRegistriesConf,
  parseRegistriesConf,
  resolveEndpoints,
} from '../../../src/oci/registries-conf.js';
import { parseReference } from '../../../src/oci/reference.js';
import { UserError } from '../../../src/core/errors.js';
import { testDir } from '../../support/temp-tree.js';

const D = 'sha256:' + 'c'.repeat(64);

const CONF = `
unqualified-search-registries = ["quay.io"]

[[registry]]
prefix = "quay.io/org"
location = "mirror-of-org.internal/quay/org"

[[registry.mirror]]
location = "fast.internal:5000/org"
insecure = true

[[registry.mirror]]
location = "digests.internal/org"
pull-from-mirror = "digest-only"

[[registry]]
location = "quay.io"

[[registry]]
location = "plain.lan:5000"
insecure = true

[[registry]]
prefix = "evil.io"
location = "evil.io"
blocked = true

[[registry]]
prefix = "*.corp.example"

[[registry.mirror]]
location = "cache.corp.example"
`;

describe('registries.conf', () => {
  const config = parseRegistriesConf(CONF, '/etc/containers/registries.conf');

  it.each([
    ['docker.io/library/debian', [{ registry: 'docker.io', repository: 'library/debian', insecure: false, mirror: false }]],
    ['quay.io/other/app', [{ registry: 'quay.io', repository: 'other/app', insecure: false, mirror: false }]],
    [
      'quay.io/org/app:1',
      [
        { registry: 'fast.internal:5000', repository: 'org/app', insecure: true, mirror: true },
        { registry: 'mirror-of-org.internal', repository: 'quay/org/app', insecure: false, mirror: false },
      ],
    ],
    [
      `quay.io/org/team/app@${D}`,
      [
        { registry: 'fast.internal:5000', repository: 'org/team/app', insecure: true, mirror: true },
        { registry: 'digests.internal', repository: 'org/team/app', insecure: false, mirror: true },
        { registry: 'mirror-of-org.internal', repository: 'quay/org/team/app', insecure: false, mirror: false },
      ],
    ],
    // "quay.io/organisation" is not under the prefix "quay.io/org".
    ['quay.io/organisation/app', [{ registry: 'quay.io', repository: 'organisation/app', insecure: false, mirror: false }]],
    ['plain.lan:5000/os:1', [{ registry: 'plain.lan:5000', repository: 'os', insecure: true, mirror: false }]],
    ['127.0.0.1:5055/fixture:v1', [{ registry: '127.0.0.1:5055', repository: 'fixture', insecure: true, mirror: false }]],
    ['localhost/fixture', [{ registry: 'localhost', repository: 'fixture', insecure: true, mirror: false }]],
    [
      'reg.corp.example/team/os',
      [
        { registry: 'cache.corp.example', repository: 'team/os', insecure: false, mirror: true },
        { registry: 'reg.corp.example', repository: 'team/os', insecure: false, mirror: false },
      ],
    ],
  ])('%s resolves to its endpoints', (input, expected) => {
    expect(resolveEndpoints(config, parseReference(input))).toEqual(expected);
  });

  it('blocked registries are a UserError naming the file', () => {
    expect(() => resolveEndpoints(config, parseReference('evil.io/x'))).toThrow(UserError);
    expect(() => resolveEndpoints(config, parseReference('evil.io/x'))).toThrow(/blocked by registries.conf \(\/etc\/containers\/registries.conf/);
  });

  it('without configuration a name is pulled from its own registry', () => {
    expect(resolveEndpoints(emptyRegistriesConfig, parseReference('ghcr.io/a/b'))).toEqual([
      { registry: 'ghcr.io', repository: 'a/b', insecure: false, mirror: false },
    ]);
  });

  it('understands the v1 insecure and block lists', () => {
    const v1 = parseRegistriesConf('[registries.insecure]\nregistries = ["old.lan"]\n[registries.block]\nregistries = ["bad.io"]\n', 'v1.conf');
    expect(resolveEndpoints(v1, parseReference('old.lan/a'))[0]).toMatchObject({ insecure: true });
    expect(() => resolveEndpoints(v1, parseReference('bad.io/a'))).toThrow(/blocked/);
  });

  it.each([
    ['[[registry]\n', /TOML syntax error/],
    ['[[registry]]\ninsecure = true\n', /neither `prefix` nor `location`/],
    ['[[registry]]\nlocation = "a.io"\ninsecure = "yes"\n', /`insecure` must be true or false/],
    ['[[registry]]\nlocation = "https://a.io"\n', /must not include a scheme/],
    ['[[registry]]\nlocation = "a.io"\n[[registry.mirror]]\ninsecure = true\n', /mirror #1 has no `location`/],
    ['[[registry]]\nprefix = "*.a.io"\nlocation = "b.io"\n', /wildcard prefix/],
    ['[[registry]]\nlocation = "a.io"\npull-from-mirror = "sometimes"\n', /pull-from-mirror/],
  ])('rejects %j', (text, message) => {
    expect(() => parseRegistriesConf(text, '/etc/containers/registries.conf.d/50-x.conf')).toThrow(message);
    expect(() => parseRegistriesConf(text, '/etc/containers/registries.conf.d/50-x.conf')).toThrow(/50-x\.conf is not a valid registries.conf/);
  });

  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3:5000', true],
    ['localhost:5000', true],
    ['[::1]:5000', true],
    ['::1', true],
    ['128.0.0.1', false],
    ['localhost.example.com', false],
    ['quay.io', false],
  ])('isLoopbackHost(%s) = %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });

  it('drop-ins are read in name order and replace entries with the same prefix', async () => {
    const dir = testDir('regconf', {
      files: {
        'registries.conf': '[[registry]]\nlocation = "a.io"\n',
        'd/20-b.conf': '[[registry]]\nlocation = "a.io"\nblocked = true\n',
        'd/10-a.conf': '[[registry]]\nlocation = "a.io"\ninsecure = true\n',
        'd/ignored.txt': 'not toml [',
      },
    });
    const config = await loadRegistriesConf({ file: join(dir, 'registries.conf'), dropInDir: join(dir, 'd') });
    expect(config.registries).toHaveLength(1);
    expect(config.registries[0]).toMatchObject({ blocked: true, insecure: false, file: join(dir, 'd', '20-b.conf') });
    const none = await loadRegistriesConf({ file: join(dir, 'absent.conf'), dropInDir: join(dir, 'absent.d') });
    expect(none.registries).toEqual([]);
  });
});
