/**
 * The registry client against a real docker-registry on 127.0.0.1 (plain, htpasswd and
 * token auth) and the fault-injecting proxy. Needs only loopback networking, not root.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsFile } from '../../support/tier.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, readFixturesIndex } from '../../../fixtures/paths.js';
import {
  digestOfStream,
  freePort,
  needsRegistryTools,
  pushToRegistry,
  startRegistry,
  writeTinyOciLayout,
  type TestRegistry,
  type TinyLayout,
} from '../../support/registry.js';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy.js';
import { RegistryClient, openRegistrySource, type BlobStream } from '../../../src/oci/registry.js';
import { parseReference } from '../../../src/oci/reference.js';
import { pullImage } from '../../../src/oci/pull.js';
import { parseRegistriesConf, emptyRegistriesConfig, type RegistryEndpoint } from '../../../src/oci/registries-conf.js';
import { parseManifestDocument } from '../../../src/oci/manifest.js';
import { InterruptedError, UserError } from '../../../src/core/errors.js';
import type { Descriptor } from '../../../src/oci/types.js';
import { suiteDir } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRegistryTools());
/** Retries in tests: same count as in production, without the waiting. */
const fastRetry = { baseDelayMs: 5, maxDelayMs: 20 };

function endpoint(host: string, repository: string, insecure = true): RegistryEndpoint {
  return { registry: host, repository, insecure, mirror: false };
}

async function failure(promise: Promise<unknown>): Promise<UserError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

function layerDescriptor(layout: TinyLayout, i = 0): Descriptor {
  const img = layout.images[i]!;
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: img.layerDigest, size: img.layer.length };
}

async function authFile(dir: string, host: string, user: string, password: string): Promise<string> {
  const path = join(dir, `auth-${user}-${password}.json`);
  await writeFile(path, JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return path;
}

describe.skipIf(skip)('registry client against docker-registry', () => {
  let work: string;
  let registry: TestRegistry;
  let single: TinyLayout;
  let multi: TinyLayout;

  const scratch = suiteDir('registry');
  beforeAll(async () => {
    work = scratch.path;
    registry = await startRegistry();
    single = await writeTinyOciLayout(join(work, 'single'), { tag: 'v1', layerBytes: 256 * 1024 });
    multi = await writeTinyOciLayout(join(work, 'multi'), { tag: 'multi', platforms: ['amd64', 'arm64'] });
    await pushToRegistry(registry, `oci:${single.dir}:v1`, 'tiny:oci', { format: 'oci' });
    await pushToRegistry(registry, `oci:${single.dir}:v1`, 'tiny:docker', { format: 'v2s2' });
    await pushToRegistry(registry, `oci:${multi.dir}:multi`, 'tiny:multi', { all: true });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('negotiates an OCI manifest and reports its digest', async () => {
    const client = new RegistryClient(endpoint(registry.host, 'tiny'), 'tiny:oci');
    try {
      const m = await client.getManifest('oci');
      expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(m.digest).toBe(single.images[0]!.manifestDigest);
      expect(Buffer.from(m.bytes).equals(single.images[0]!.manifestBytes)).toBe(true);
    } finally {
      client.close();
    }
  });

  it('negotiates a Docker schema 2 manifest', async () => {
    const source = await openRegistrySource(parseReference(`${registry.host}/tiny:docker`), { registriesConf: emptyRegistriesConfig });
    try {
      const m = await source.getManifest();
      expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      const doc = parseManifestDocument(m.bytes, m.mediaType, 'tiny');
      expect(doc.kind).toBe('manifest');
    } finally {
      await source.close();
    }
  });

  it('serves an index with several platforms, and each manifest by digest', async () => {
    const source = await openRegistrySource(parseReference(`${registry.host}/tiny:multi`), { registriesConf: emptyRegistriesConfig });
    try {
      const top = await source.getManifest();
      expect(top.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(top.digest).toBe(multi.indexDigest);
      const doc = parseManifestDocument(top.bytes, top.mediaType, 'tiny');
      if (doc.kind !== 'index') throw new Error('expected an index');
      expect(doc.index.manifests.map((d) => d.platform?.architecture).sort()).toEqual(['amd64', 'arm64']);
      const arm = doc.index.manifests.find((d) => d.platform?.architecture === 'arm64')!;
      const child = await source.getManifest(arm.digest);
      expect(child.digest).toBe(arm.digest);
      expect(child.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    } finally {
      await source.close();
    }
  });

  it('streams a blob, and resumes it from an offset with Range', async () => {
    const client = new RegistryClient(endpoint(registry.host, 'tiny'), 'tiny');
    try {
      const full = await digestOfStream(await client.getBlob(layerDescriptor(single)));
      expect(full.digest).toBe(single.images[0]!.layerDigest);
      const tail = (await client.getBlob(layerDescriptor(single), { offset: 1000 })) as BlobStream;
      expect(tail.startOffset).toBe(1000);
      expect((await digestOfStream(tail)).bytes.equals(single.images[0]!.layer.subarray(1000))).toBe(true);
      expect(await client.headBlob(single.images[0]!.layerDigest)).toEqual({ size: single.images[0]!.layer.length });
      expect(await client.headBlob('sha256:' + '0'.repeat(64))).toBeNull();
      expect((await client.listTags()).sort()).toEqual(['docker', 'multi', 'oci']);
    } finally {
      client.close();
    }
  });

  it('an unknown tag is "not found" with a hint to list the tags', async () => {
    const source = await openRegistrySource(parseReference(`${registry.host}/tiny:nope`), { registriesConf: emptyRegistriesConfig });
    const err = await failure(source.getManifest());
    expect(err.message).toMatch(new RegExp(`image ${registry.host}/tiny:nope not found in registry ${registry.host}`));
    expect(err.hint).toContain(`skopeo list-tags docker://${registry.host}/tiny`);
    await source.close();
  });

  it('a registry that is down cannot be reached, after bounded retries', async () => {
    const port = await freePort();
    const client = new RegistryClient(endpoint(`127.0.0.1:${port}`, 'tiny'), 'tiny', { retry: fastRetry });
    const err = await failure(client.getManifest('oci'));
    expect(err.message).toMatch(new RegExp(`cannot reach registry 127\\.0\\.0\\.1:${port}.*ECONNREFUSED.*after 4 tries`));
    expect(err.hint).toMatch(/registry is running/);
    client.close();
  });

  it('TLS spoken to a plain-HTTP registry says to mark it insecure', async () => {
    // A name that is not loopback, pointed at the plain registry on 127.0.0.1.
    const host = `plain.registry.test:${registry.port}`;
    const source = await openRegistrySource(parseReference(`${host}/tiny:oci`), {
      registriesConf: emptyRegistriesConfig,
      resolve: { 'plain.registry.test': '127.0.0.1' },
      retry: fastRetry,
    });
    const err = await failure(source.getManifest());
    expect(err.message).toMatch(`registry ${host} answered a TLS connection in plain HTTP`);
    expect(err.hint).toContain('insecure = true');
    await source.close();
    // Marked insecure in registries.conf, the same name works over plain HTTP.
    const conf = parseRegistriesConf(`[[registry]]\nlocation = "${host}"\ninsecure = true\n`, 'test.conf');
    const insecure = await openRegistrySource(parseReference(`${host}/tiny:oci`), { registriesConf: conf, resolve: { 'plain.registry.test': '127.0.0.1' } });
    expect((await insecure.getManifest()).digest).toBe(single.images[0]!.manifestDigest);
    await insecure.close();
  });

  it('falls back from a dead mirror to the registry', async () => {
    const dead = await freePort();
    const conf = parseRegistriesConf(
      `[[registry]]\nprefix = "mirrored.example/os"\nlocation = "${registry.host}/tiny"\n[[registry.mirror]]\nlocation = "127.0.0.1:${dead}/tiny"\n`,
      'test.conf',
    );
    const source = await openRegistrySource(parseReference('mirrored.example/os:oci'), { registriesConf: conf, retry: fastRetry });
    expect((await source.getManifest()).digest).toBe(single.images[0]!.manifestDigest);
    expect((await digestOfStream(await source.getBlob(layerDescriptor(single)))).digest).toBe(single.images[0]!.layerDigest);
    await source.close();
  });

  it('refuses a manifest over 4 MiB without reading it all', async () => {
    let sent = 0;
    const huge = Buffer.alloc(5 * 1024 * 1024, 0x20);
    const server = http.createServer((req, res) => {
      const chunked = req.url?.includes('chunked');
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...(chunked ? {} : { 'content-length': huge.length }) });
      // Written in slices so "how much went out" means something.
      let off = 0;
      const pump = (): void => {
        while (off < huge.length) {
          const slice = huge.subarray(off, off + 64 * 1024);
          off += slice.length;
          sent += slice.length;
          if (!res.write(slice)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('close', () => (off = huge.length));
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      for (const tag of ['declared', 'chunked']) {
        const client = new RegistryClient(endpoint(host, 'big'), `${host}/big:${tag}`, { retry: fastRetry });
        const err = await failure(client.getManifest(tag));
        expect(err.message).toMatch(/manifest of image .*big.* bytes, more than the 4194304-byte limit/);
        client.close();
      }
      expect(sent).toBeLessThan(2 * huge.length);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('malformed JSON and unsupported media types are errors naming the image', async () => {
    const bodies: Record<string, { type: string; body: string }> = {
      '/v2/odd/manifests/broken': { type: 'application/vnd.oci.image.manifest.v1+json', body: '{"schemaVersion": 2, "layers": [' },
      '/v2/odd/manifests/schema1': { type: 'application/vnd.docker.distribution.manifest.v1+prettyjws', body: '{"schemaVersion": 1, "name": "odd", "tag": "schema1"}' },
      '/v2/odd/manifests/weird': { type: 'application/vnd.example.thing+json', body: '{"schemaVersion": 2, "mediaType": "application/vnd.example.thing+json"}' },
    };
    const server = http.createServer((req, res) => {
      const found = bodies[req.url ?? ''];
      if (!found) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': found.type, 'content-length': Buffer.byteLength(found.body) });
      res.end(found.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new RegistryClient(endpoint(host, 'odd'), `${host}/odd`);
    try {
      expect((await failure(client.getManifest('broken'))).message).toMatch(new RegExp(`${host}/odd.*not JSON`));
      expect((await failure(client.getManifest('schema1'))).message).toMatch(/schema 1 manifest format/);
      expect((await failure(client.getManifest('weird'))).message).toMatch(/unsupported media type "application\/vnd.example.thing\+json"/);
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('an aborted blob fetch is an interruption, not a registry error', async () => {
    const client = new RegistryClient(endpoint(registry.host, 'tiny'), 'tiny');
    const controller = new AbortController();
    controller.abort();
    await expect(client.getBlob(layerDescriptor(single), { signal: controller.signal })).rejects.toBeInstanceOf(InterruptedError);
    client.close();
  });

  describe('through the fault proxy', () => {
    let proxy: FaultProxy;
    beforeAll(async () => {
      proxy = await startFaultProxy({ host: '127.0.0.1', port: registry.port });
    });
    afterAll(async () => {
      await proxy?.stop();
    });
    const fresh = (): RegistryClient => {
      proxy.clearFaults();
      proxy.resetCounters();
      return new RegistryClient(endpoint(proxy.host, 'tiny'), 'tiny', { retry: fastRetry });
    };
    const manifestRequests = (): number => proxy.requests.filter((r) => r.path.includes('/manifests/')).length;

    it('retries 500 and 503, then succeeds', async () => {
      const client = fresh();
      proxy.addFault({ path: /\/manifests\//, fault: { kind: 'status', status: 500 }, times: 1 });
      proxy.addFault({ path: /\/manifests\//, fault: { kind: 'status', status: 503 }, times: 1 });
      expect((await client.getManifest('oci')).digest).toBe(single.images[0]!.manifestDigest);
      expect(proxy.requests.filter((r) => r.path.includes('/manifests/')).map((r) => r.status)).toEqual([500, 503, 200]);
      client.close();
    });

    it('gives up after four tries of 5xx', async () => {
      const client = fresh();
      proxy.addFault({ path: /\/manifests\//, fault: { kind: 'status', status: 502 }, times: 10 });
      const err = await failure(client.getManifest('oci'));
      expect(err.message).toMatch(/answered HTTP 502/);
      expect(manifestRequests()).toBe(4);
      client.close();
    });

    it('never retries a 403 or a 404', async () => {
      const client = fresh();
      proxy.addFault({ path: /\/manifests\//, fault: { kind: 'status', status: 403 }, times: 10 });
      const err = await failure(client.getManifest('oci'));
      expect(err.message).toMatch(/access to image tiny denied by registry .* \(HTTP 403/);
      expect(manifestRequests()).toBe(1);
      proxy.clearFaults();
      proxy.resetCounters();
      await failure(client.getManifest('absent'));
      expect(manifestRequests()).toBe(1);
      client.close();
    });

    it('a connection dropped mid-blob resumes with Range from where it stopped', async () => {
      const client = fresh();
      const layer = single.images[0]!.layer;
      proxy.addFault({ path: /\/blobs\//, fault: { kind: 'drop-after', bytes: 100_000 } });
      const received: Buffer[] = [];
      const first = await client.getBlob(layerDescriptor(single));
      const dropped = await (async () => {
        try {
          for await (const chunk of first) received.push(Buffer.from(chunk as Buffer));
          return null;
        } catch (err) {
          return err;
        }
      })();
      expect(dropped).toBeInstanceOf(Error);
      const got = Buffer.concat(received).length;
      expect(got).toBeLessThan(layer.length);
      const rest = (await client.getBlob(layerDescriptor(single), { offset: got })) as BlobStream;
      expect(rest.startOffset).toBe(got);
      const tail = await digestOfStream(rest);
      expect(Buffer.concat([...received, tail.bytes]).equals(layer)).toBe(true);
      const blobRequests = proxy.requests.filter((r) => r.path.includes('/blobs/'));
      expect(blobRequests.map((r) => r.range)).toEqual([null, `bytes=${got}-`]);
      expect(blobRequests[1]!.bytes).toBe(layer.length - got);
      client.close();
    });

    it('a server that ignores Range restarts from 0 and says so', async () => {
      const client = fresh();
      proxy.addFault({ path: /\/blobs\//, fault: { kind: 'ignore-range' } });
      const stream = (await client.getBlob(layerDescriptor(single), { offset: 5000 })) as BlobStream;
      expect(stream.startOffset).toBe(0);
      expect((await digestOfStream(stream)).digest).toBe(single.images[0]!.layerDigest);
      client.close();
    });

    it('a pull resuming a partial blob starts over when the registry ignores Range', async () => {
      proxy.clearFaults();
      // Every blob request (config and layer) has its Range dropped.
      proxy.addFault({ path: /\/blobs\//, fault: { kind: 'ignore-range' }, times: 10 });
      const cacheDir = join(work, 'cache-ignored-range');
      const image = single.images[0]!;
      const hex = image.layerDigest.slice('sha256:'.length);
      // What an interrupted earlier pull left: the first half of the layer.
      await mkdir(join(cacheDir, 'blobs', 'sha256'), { recursive: true });
      await writeFile(join(cacheDir, 'blobs', 'sha256', `${hex}.partial`), image.layer.subarray(0, image.layer.length >> 1));
      const pulled = await pullImage(parseReference(`${proxy.host}/tiny:oci`), {
        cacheDir,
        platform: { os: 'linux', architecture: image.platform.architecture },
      });
      expect(pulled.layers[0]!.descriptor.digest).toBe(image.layerDigest);
      expect(await readFile(join(cacheDir, 'blobs', 'sha256', hex))).toEqual(image.layer);
      proxy.clearFaults();
    });

    it('follows redirects, without sending credentials to another host', async () => {
      const client = fresh();
      proxy.addFault({ path: /\/blobs\//, fault: { kind: 'redirect', viaHost: `localhost:${proxy.port}` } });
      expect((await digestOfStream(await client.getBlob(layerDescriptor(single)))).digest).toBe(single.images[0]!.layerDigest);
      const redirected = proxy.requests.find((r) => r.path.startsWith('/__redirected'));
      expect(redirected).toMatchObject({ status: 200, authorization: false });
      client.close();
    });

    it('passes a corrupted byte through (the puller verifies digests)', async () => {
      const client = fresh();
      proxy.addFault({ path: /\/blobs\//, fault: { kind: 'corrupt', atByte: 10 } });
      const got = await digestOfStream(await client.getBlob(layerDescriptor(single)));
      expect(got.size).toBe(single.images[0]!.layer.length);
      expect(got.digest).not.toBe(single.images[0]!.layerDigest);
      client.close();
    });
  });
});

describe.skipIf(skip)('registry client with htpasswd basic auth', () => {
  let work: string;
  let registry: TestRegistry;
  let layout: TinyLayout;
  const scratch = suiteDir('registry-basic');
  beforeAll(async () => {
    work = scratch.path;
    registry = await startRegistry({ kind: 'htpasswd', username: 'alice', password: 's3cret' });
    layout = await writeTinyOciLayout(join(work, 'img'), { tag: 'v1' });
    await pushToRegistry(registry, `oci:${layout.dir}:v1`, 'private/os:v1');
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('pulls with the credentials from the auth file', async () => {
    const file = await authFile(work, registry.host, 'alice', 's3cret');
    const source = await openRegistrySource(parseReference(`${registry.host}/private/os:v1`), { registriesConf: emptyRegistriesConfig, credentials: { files: [file] } });
    const m = await source.getManifest();
    expect(m.digest).toBe(layout.images[0]!.manifestDigest);
    expect((await digestOfStream(await source.getBlob(layerDescriptor(layout)))).digest).toBe(layout.images[0]!.layerDigest);
    await source.close();
  });

  it('a wrong password is denied, naming the credential file used', async () => {
    const file = await authFile(work, registry.host, 'alice', 'wrong');
    const source = await openRegistrySource(parseReference(`${registry.host}/private/os:v1`), { registriesConf: emptyRegistriesConfig, credentials: { files: [file] } });
    const err = await failure(source.getManifest());
    expect(err.message).toMatch(new RegExp(`access to image ${registry.host}/private/os:v1 denied by registry ${registry.host} \\(HTTP 401`));
    expect(err.message).toContain(`the credentials for ${registry.host} from ${file} were not accepted`);
    expect(err.hint).toContain(`podman login ${registry.host}`);
    await source.close();
  });

  it('without credentials, the error lists the files tried', async () => {
    const missing = join(work, 'nowhere.json');
    const other = join(work, 'other.json');
    await writeFile(other, JSON.stringify({ auths: { 'quay.io': { auth: Buffer.from('a:b').toString('base64') } } }));
    const source = await openRegistrySource(parseReference(`${registry.host}/private/os:v1`), { registriesConf: emptyRegistriesConfig, credentials: { files: [missing, other] } });
    const err = await failure(source.getManifest());
    expect(err.message).toContain(`no credentials for ${registry.host} were found (tried ${missing} (missing), ${other} (no entry for ${registry.host}))`);
    await source.close();
  });
});

describe.skipIf(skip)('registry client with bearer token auth', () => {
  let work: string;
  let registry: TestRegistry;
  let layout: TinyLayout;
  const scratch = suiteDir('registry-token');
  beforeAll(async () => {
    work = scratch.path;
    registry = await startRegistry({ kind: 'token', username: 'bob', password: 'hunter2' });
    layout = await writeTinyOciLayout(join(work, 'img'), { tag: 'v1' });
    await pushToRegistry(registry, `oci:${layout.dir}:v1`, 'team/os:v1');
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('fetches a token once per scope and pulls with it', async () => {
    const file = await authFile(work, registry.host, 'bob', 'hunter2');
    registry.tokenIssuer!.requests.length = 0;
    const source = await openRegistrySource(parseReference(`${registry.host}/team/os:v1`), { registriesConf: emptyRegistriesConfig, credentials: { files: [file] } });
    expect((await source.getManifest()).digest).toBe(layout.images[0]!.manifestDigest);
    expect((await digestOfStream(await source.getBlob(layerDescriptor(layout)))).digest).toBe(layout.images[0]!.layerDigest);
    expect(registry.tokenIssuer!.requests).toEqual([{ user: 'bob', scopes: ['repository:team/os:pull'], status: 200 }]);
    await source.close();
  });

  it('a wrong password is refused by the token server', async () => {
    const file = await authFile(work, registry.host, 'bob', 'nope');
    const source = await openRegistrySource(parseReference(`${registry.host}/team/os:v1`), { registriesConf: emptyRegistriesConfig, credentials: { files: [file] } });
    const err = await failure(source.getManifest());
    expect(err.message).toMatch(/denied by the token server 127\.0\.0\.1:\d+ \(HTTP 401: UNAUTHORIZED: invalid username or password\)/);
    expect(err.message).toContain(file);
    await source.close();
  });

  it('an anonymous token without access is denied by the registry', async () => {
    const source = await openRegistrySource(parseReference(`${registry.host}/team/os:v1`), { registriesConf: emptyRegistriesConfig, credentials: { files: [] } });
    const err = await failure(source.getManifest());
    expect(err.message).toMatch(new RegExp(`denied by registry ${registry.host} \\(HTTP 401`));
    expect(err.message).toContain('no credentials');
    await source.close();
  });
});

const fixtureSkip = skip || explainSkip('privileged', needsFile(fixturesIndexPath, fixturesHint));

describe.skipIf(fixtureSkip)('registry client with the fixture OS image', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
    await pushToRegistry(registry, ociLayoutRef('v2'), 'fixture:v2');
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('serves the pushed manifest unchanged and every blob with its digest', async () => {
    const source = await openRegistrySource(parseReference(`${registry.host}/fixture:v2`), { registriesConf: emptyRegistriesConfig });
    try {
      const m = await source.getManifest();
      expect(m.digest).toBe(readFixturesIndex().tags.v2.manifestDigest);
      const doc = parseManifestDocument(m.bytes, m.mediaType, 'fixture:v2');
      if (doc.kind !== 'manifest') throw new Error('expected a manifest');
      for (const desc of [doc.manifest.config, ...doc.manifest.layers]) {
        const got = await digestOfStream(await source.getBlob(desc));
        expect({ digest: got.digest, size: got.size }).toEqual({ digest: desc.digest, size: desc.size });
      }
    } finally {
      await source.close();
    }
  });
});
