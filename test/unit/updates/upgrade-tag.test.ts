import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { retaggedImage } from '../../../src/updates/upgrade.js';
import { runUpgrade } from '../../../src/cli/upgrade.js';
import { loadConfig } from '../../../src/cli/build-disk.js';

describe('bootc upgrade --tag: the followed image at another tag', () => {
  it.each([
    [{ image: 'quay.io/example/os:v1', transport: 'registry' }, 'v2', { image: 'quay.io/example/os:v2', transport: 'registry' }],
    [{ image: '10.0.2.100:5000/fixture:v1', transport: 'registry' }, 'v2', { image: '10.0.2.100:5000/fixture:v2', transport: 'registry' }],
    [{ image: 'quay.io/example/os@sha256:' + 'a'.repeat(64), transport: 'registry' }, 'latest', { image: 'quay.io/example/os:latest', transport: 'registry' }],
    [{ image: 'quay.io/example/os:v1@sha256:' + 'a'.repeat(64), transport: 'registry' }, 'v3', { image: 'quay.io/example/os:v3', transport: 'registry' }],
    [{ image: '/srv/layout:v1', transport: 'oci' }, 'v2', { image: '/srv/layout:v2', transport: 'oci' }],
    [{ image: 'localhost/os:v1', transport: 'containers-storage' }, 'v2', { image: 'localhost/os:v2', transport: 'containers-storage' }],
  ])('%o with --tag %s follows %o', (image, tag, expected) => {
    expect(retaggedImage(image, tag)).toEqual(expected);
  });

  it('refuses what is not a tag, and an image without tags', () => {
    expect(() => retaggedImage({ image: 'quay.io/example/os:v1', transport: 'registry' }, 'v2:x')).toThrow(/--tag "v2:x" is not a tag/);
    expect(() => retaggedImage({ image: 'quay.io/example/os:v1', transport: 'registry' }, '-v2')).toThrow(/is not a tag/);
    expect(() => retaggedImage({ image: '/srv/os.tar', transport: 'docker-archive' }, 'v2')).toThrow(/docker-archive, which has no tags/);
  });

  it('--tag with --from-downloaded is refused before anything is read', async () => {
    await expect(runUpgrade({ check: false, apply: false, quiet: true, fromDownloaded: true, tag: 'v2' })).rejects.toThrow(/--tag and --from-downloaded/);
  });
});

describe('build-disk --config -', () => {
  it('reads the configuration from stdin as JSON, as bib does', async () => {
    const stdin = Readable.from([Buffer.from('{"customizations":{"kernel":{"append":"quiet splash"},"user":[{"name":"alice","groups":["wheel"]}]}}')]);
    const config = await loadConfig('-', stdin);
    expect(config.kernelAppend).toEqual(['quiet', 'splash']);
    expect(config.users).toEqual([{ name: 'alice', groups: ['wheel'] }]);
  });
  it('names stdin when it is not JSON', async () => {
    await expect(loadConfig('-', Readable.from([Buffer.from('[customizations]\n')]))).rejects.toThrow(/stdin: not valid JSON/);
  });
});
