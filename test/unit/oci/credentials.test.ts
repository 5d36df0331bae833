import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  candidateKeys,
  credentialFiles,
  describeTried,
  findCredential,
  lookupCredentials,
  normaliseAuthKey,
  parseAuthFile,
} from '../../../src/oci/credentials.js';
import { UserError } from '../../../src/core/errors.js';
import { testDir } from '../../support/temp-tree.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('auth.json parsing', () => {
  it('decodes user:password (a password may contain ":") and identity tokens', () => {
    const entries = parseAuthFile(
      JSON.stringify({
        auths: {
          'quay.io': { auth: b64('alice:pa:ss') },
          'ghcr.io': { auth: b64('bob:'), identitytoken: 'refresh-123' },
          'empty.io': {},
        },
      }),
      '/x/auth.json',
    );
    expect(entries.get('quay.io')).toEqual({ username: 'alice', password: 'pa:ss' });
    expect(entries.get('ghcr.io')).toEqual({ username: 'bob', password: '', identityToken: 'refresh-123' });
    expect(entries.has('empty.io')).toBe(false);
  });

  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['http://registry.example.com:5000/v2/', 'registry.example.com:5000'],
    ['index.docker.io/foo', 'docker.io/foo'],
    ['quay.io/org/', 'quay.io/org'],
    ['quay.io', 'quay.io'],
  ])('normalises the key %s to %s', (key, expected) => {
    expect(normaliseAuthKey(key)).toBe(expected);
  });

  it('a file with no auths (only credHelpers) has no entries', () => {
    expect(parseAuthFile('{"credHelpers":{"gcr.io":"gcloud"}}', 'f').size).toBe(0);
  });

  it.each([
    ['{', /malformed JSON/],
    ['[]', /not a JSON object/],
    ['{"auths": 3}', /"auths" is not an object/],
    ['{"auths": {"q.io": 1}}', /entry for "q.io" is not an object/],
    [`{"auths": {"q.io": {"auth": "${b64('nocolon')}"}}}`, /not base64 of "user:password"/],
    ['{"auths": {"q.io": {"auth": 5}}}', /"auth" of "q.io" is not a string/],
  ])('rejects %s naming the file', (text, message) => {
    const err = (() => {
      try {
        parseAuthFile(text, '/etc/containers/auth.json');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(message);
    expect((err as UserError).message).toContain('/etc/containers/auth.json');
    expect((err as UserError).hint).toContain('podman login');
  });

  it('the most specific key wins', () => {
    expect(candidateKeys('quay.io', 'org/team/app')).toEqual(['quay.io/org/team/app', 'quay.io/org/team', 'quay.io/org', 'quay.io']);
    const entries = parseAuthFile(
      JSON.stringify({ auths: { 'quay.io': { auth: b64('host:1') }, 'quay.io/org': { auth: b64('org:2') }, 'quay.io/org/other': { auth: b64('other:3') } } }),
      'f',
    );
    expect(findCredential(entries, 'quay.io', 'org/app', 'f')).toMatchObject({ username: 'org', source: { key: 'quay.io/org' } });
    expect(findCredential(entries, 'quay.io', 'elsewhere/app', 'f')).toMatchObject({ username: 'host' });
    expect(findCredential(entries, 'quay.io', 'org/otherthing', 'f')).toMatchObject({ username: 'org' });
    expect(findCredential(entries, 'ghcr.io', 'org/app', 'f')).toBeNull();
  });
});

describe('credential files', () => {
  it('user scope: REGISTRY_AUTH_FILE replaces the runtime file; then config and docker', () => {
    expect(credentialFiles('user', { env: { REGISTRY_AUTH_FILE: '/a.json', XDG_RUNTIME_DIR: '/run/user/7' }, homeDir: '/home/u' })).toEqual([
      '/a.json',
      '/home/u/.config/containers/auth.json',
      '/home/u/.docker/config.json',
    ]);
    expect(credentialFiles('user', { env: { XDG_RUNTIME_DIR: '/run/user/7', XDG_CONFIG_HOME: '/cfg' }, homeDir: '/home/u' })).toEqual([
      '/run/user/7/containers/auth.json',
      '/cfg/containers/auth.json',
      '/home/u/.docker/config.json',
    ]);
    expect(credentialFiles('user', { env: {}, homeDir: '/root', uid: 0 })[0]).toBe('/run/containers/0/auth.json');
  });

  it('host scope: the ostree pull secret locations, /run first', () => {
    expect(credentialFiles('host', { root: '/sysroot' })).toEqual([
      '/sysroot/run/ostree/auth.json',
      '/sysroot/etc/ostree/auth.json',
      '/sysroot/usr/lib/ostree/auth.json',
    ]);
  });

  let dir: string;
  beforeEach(async () => {
    dir = testDir('creds');
  });

  it('loads from the first file with an entry and records what it tried', async () => {
    const home = join(dir, 'home');
    await mkdir(join(home, '.docker'), { recursive: true });
    await mkdir(join(dir, 'xdg', 'containers'), { recursive: true });
    await writeFile(join(dir, 'xdg', 'containers', 'auth.json'), JSON.stringify({ auths: { 'ghcr.io': { auth: b64('g:h') } } }));
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('d:p') } } }));
    const found = await lookupCredentials('docker.io', 'library/debian', { env: { XDG_RUNTIME_DIR: join(dir, 'xdg') }, homeDir: home });
    expect(found.credential).toMatchObject({ username: 'd', password: 'p', source: { file: join(home, '.docker', 'config.json') } });
    expect(found.tried.map((t) => t.outcome)).toEqual(['no-entry', 'missing', 'used']);
    const none = await lookupCredentials('quay.io', 'a/b', { env: { XDG_RUNTIME_DIR: join(dir, 'xdg') }, homeDir: home });
    expect(none.credential).toBeNull();
    expect(describeTried(none.tried, 'quay.io')).toBe(
      `${join(dir, 'xdg/containers/auth.json')} (no entry for quay.io), ${join(home, '.config/containers/auth.json')} (missing), ${join(home, '.docker/config.json')} (no entry for quay.io)`,
    );
  });

  it('host scope: the first pull secret that exists is the only one read', async () => {
    await mkdir(join(dir, 'etc/ostree'), { recursive: true });
    await mkdir(join(dir, 'usr/lib/ostree'), { recursive: true });
    await writeFile(join(dir, 'etc/ostree/auth.json'), JSON.stringify({ auths: { 'ghcr.io': { auth: b64('a:b') } } }));
    await writeFile(join(dir, 'usr/lib/ostree/auth.json'), JSON.stringify({ auths: { 'quay.io': { auth: b64('c:d') } } }));
    const found = await lookupCredentials('quay.io', 'x/y', { scope: 'host', root: dir });
    expect(found.credential).toBeNull();
    expect(found.tried).toEqual([
      { path: join(dir, 'run/ostree/auth.json'), outcome: 'missing' },
      { path: join(dir, 'etc/ostree/auth.json'), outcome: 'no-entry' },
    ]);
    expect((await lookupCredentials('ghcr.io', 'x/y', { scope: 'host', root: dir })).credential).toMatchObject({ username: 'a' });
  });

  it('a malformed file is an error naming it, not silently skipped', async () => {
    await writeFile(join(dir, 'bad.json'), '{"auths":');
    await expect(lookupCredentials('quay.io', 'a', { files: [join(dir, 'bad.json')] })).rejects.toThrow(/bad\.json is not valid: malformed JSON/);
  });
});
