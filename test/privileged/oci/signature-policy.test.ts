/**
 * The signature policy on real pulls: a docker-registry on 127.0.0.1, images signed by
 * skopeo with a GPG key (lookaside storage served over HTTP from 127.0.0.1) and with a
 * sigstore key pair (attachments in the registry, written as skopeo and cosign write them),
 * keys made in the test. Accepted when
 * the policy's key made a signature for exactly the pulled manifest and an identity it
 * accepts; every other case is refused with its reason, and the refused pull keeps nothing
 * in the blob cache. Needs loopback networking, gpg and skopeo; not root.
 */
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { UserError, unwrapContext } from '../../../src/core/errors.js';
import { ImageTrust } from '../../../src/oci/image-trust.js';
import { pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import { explainSkip, needsCommands } from '../../support/tier.js';
import { needsRegistryTools, startRegistry, writeTinyOciLayout, type TestRegistry, type TinyLayout } from '../../support/registry.js';
import {
  attachSigstoreSignature,
  getManifest,
  makeGpgSigner,
  makeSigstoreKeyPair,
  putManifest,
  serveDirectory,
  type GpgSigner,
  type SigstoreKeyPair,
  type StaticServer,
} from '../../support/signing.js';
import { suiteDir } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRegistryTools() ?? needsCommands('gpg', 'gpgv', 'gpgconf'));

describe.skipIf(skip)('signature policy on pulls from a real registry', () => {
  let work: string;
  let registry: TestRegistry;
  let lookaside: StaticServer;
  let staging: string;
  let registriesD: string;
  let trusted: GpgSigner;
  let other: GpgSigner;
  let sigTrusted: SigstoreKeyPair;
  let sigOther: SigstoreKeyPair;
  let v1: TinyLayout;
  let v2: TinyLayout;
  let host: string;

  const digestOf = (layout: TinyLayout): string => layout.images[0]!.manifestDigest;

  async function push(layout: TinyLayout, target: string, sign: string[] = [], env: Record<string, string> = {}): Promise<void> {
    await run({
      description: `Pushing ${target}`,
      argv: ['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', '--registries.d', registriesD, ...sign, `oci:${layout.dir}:${layout.tag}`, `docker://${host}/${target}`],
      env,
    });
  }
  const gpgSign = (signer: GpgSigner, identity?: string): string[] => ['--sign-by', signer.fingerprint, ...(identity ? ['--sign-identity', identity] : [])];
  const sigTag = (digest: string): string => `${digest.replace(':', '-')}.sig`;

  const scratch = suiteDir('sigpolicy');
  beforeAll(async () => {
    work = scratch.path;
    registry = await startRegistry();
    host = registry.host;
    staging = join(work, 'lookaside');
    await mkdir(staging, { recursive: true });
    lookaside = await serveDirectory(staging);
    registriesD = join(work, 'registries.d');
    await mkdir(registriesD, { recursive: true });
    // skopeo writes signatures to lookaside-staging; readers (we) fetch them from lookaside.
    await writeFile(
      join(registriesD, 'test.yaml'),
      [
        'docker:',
        `  ${host}:`,
        `    lookaside: ${lookaside.url}`,
        `    lookaside-staging: file://${staging}`,
        '    use-sigstore-attachments: true',
      ].join('\n') + '\n',
    );
    [trusted, other] = await Promise.all([makeGpgSigner('trusted'), makeGpgSigner('other')]);
    sigTrusted = await makeSigstoreKeyPair(join(work, 'keys'), 'trusted');
    sigOther = await makeSigstoreKeyPair(join(work, 'keys'), 'other');
    v1 = await writeTinyOciLayout(join(work, 'v1'), { tag: 'v1', seed: 'one' });
    v2 = await writeTinyOciLayout(join(work, 'v2'), { tag: 'v2', seed: 'two' });

    // GPG simple signing.
    await push(v1, 'gpg-ok/os:v1', gpgSign(trusted), trusted.env);
    await push(v1, 'gpg-unsigned/os:v1');
    await push(v1, 'gpg-otherkey/os:v1', gpgSign(other), other.env);
    await push(v1, 'gpg-identity/os:v1', gpgSign(trusted, `${host}/somewhere-else/os:v1`), trusted.env);
    await push(v1, 'gpg-tampered/os:v1', gpgSign(trusted), trusted.env);
    await push(v2, 'gpg-otherdigest/os:v2', gpgSign(trusted), trusted.env);
    await push(v1, 'gpg-otherdigest/os:v1');
    // Tampered: one byte of the signed message flipped.
    const tamperedPath = join(staging, 'gpg-tampered/os@' + digestOf(v1).replace(':', '='), 'signature-1');
    const bytes = await readFile(tamperedPath);
    bytes[bytes.length - 40] = bytes[bytes.length - 40]! ^ 0x01;
    await writeFile(tamperedPath, bytes);
    // Another digest: v2's signature put where v1's is looked for.
    await cp(join(staging, 'gpg-otherdigest/os@' + digestOf(v2).replace(':', '=')), join(staging, 'gpg-otherdigest/os@' + digestOf(v1).replace(':', '=')), { recursive: true });

    // Sigstore attachments (see test/support/signing.ts for why not through skopeo).
    const sigstoreSign = async (layout: TinyLayout, repo: string, keys: SigstoreKeyPair, identity = `${host}/${repo}:${layout.tag}`): Promise<void> => {
      await push(layout, `${repo}:${layout.tag}`);
      await attachSigstoreSignature(registry.port, repo, digestOf(layout), identity, keys.privateKey);
    };
    await sigstoreSign(v1, 'sig-ok/os', sigTrusted);
    await push(v1, 'sig-unsigned/os:v1');
    await sigstoreSign(v1, 'sig-otherkey/os', sigOther);
    await sigstoreSign(v1, 'sig-identity/os', sigTrusted, `${host}/somewhere-else/os:v1`);
    await sigstoreSign(v1, 'sig-tampered/os', sigTrusted);
    const attachment = JSON.parse((await getManifest(registry.port, 'sig-tampered/os', sigTag(digestOf(v1)))).toString()) as { layers: Array<{ annotations: Record<string, string> }> };
    const raw = Buffer.from(attachment.layers[0]!.annotations['dev.cosignproject.cosign/signature']!, 'base64');
    raw[raw.length - 3] = raw[raw.length - 3]! ^ 0x01;
    attachment.layers[0]!.annotations['dev.cosignproject.cosign/signature'] = raw.toString('base64');
    await putManifest(registry.port, 'sig-tampered/os', sigTag(digestOf(v1)), Buffer.from(JSON.stringify(attachment)));
    await sigstoreSign(v2, 'sig-otherdigest/os', sigTrusted);
    await push(v1, 'sig-otherdigest/os:v1');
    await putManifest(registry.port, 'sig-otherdigest/os', sigTag(digestOf(v1)), await getManifest(registry.port, 'sig-otherdigest/os', sigTag(digestOf(v2))));

    await push(v1, 'open/os:v1');
    await push(v1, 'elsewhere/os:v1');
  }, 300_000);

  afterAll(async () => {
    await lookaside?.stop();
    await registry?.stop();
    await trusted?.dispose();
    await other?.dispose();
  });

  async function policyFile(name: string, docker: Record<string, unknown[]>, defaults: unknown[] = [{ type: 'reject' }]): Promise<string> {
    const path = join(work, `${name}.json`);
    await writeFile(path, JSON.stringify({ default: defaults, transports: { docker } }));
    return path;
  }

  const signedBy = (keys: Record<string, unknown> = { keyPath: trusted.publicKeyPath }) => ({ type: 'signedBy', keyType: 'GPGKeys', ...keys });
  const sigstoreSigned = (keys: Record<string, unknown> = { keyPath: sigTrusted.publicKeyPath }) => ({ type: 'sigstoreSigned', ...keys });

  /** The standard policy: gpg-* repos need the trusted GPG key, sig-* the trusted sigstore key. */
  const standardPolicy = (): Promise<string> =>
    policyFile('standard', {
      ...Object.fromEntries(['gpg-ok', 'gpg-unsigned', 'gpg-otherkey', 'gpg-identity', 'gpg-tampered', 'gpg-otherdigest'].map((r) => [`${host}/${r}`, [signedBy()]])),
      ...Object.fromEntries(['sig-ok', 'sig-unsigned', 'sig-otherkey', 'sig-identity', 'sig-tampered', 'sig-otherdigest'].map((r) => [`${host}/${r}`, [sigstoreSigned()]])),
      [`${host}/open`]: [{ type: 'insecureAcceptAnything' }],
    });

  async function pull(image: string, policy: string, cacheName = image.replace(/[^a-z0-9]+/g, '-')) {
    const cacheDir = join(work, 'cache', cacheName);
    const trust = await ImageTrust.load({ policyPaths: { explicit: policy }, registriesDPaths: { dir: registriesD } });
    return { cacheDir, result: pullImage(parseReference(`${host}/${image}`), { cacheDir, trust }) };
  }

  let refusals = 0;
  async function refusedPull(image: string, policy: string): Promise<UserError> {
    // A cache of its own, so what an accepted pull left cannot hide what this one kept.
    const { cacheDir, result } = await pull(image, policy, `refused-${++refusals}`);
    const err = await result.then(
      () => null,
      (e: unknown) => e,
    );
    const root = unwrapContext(err).root;
    if (!(root instanceof UserError)) throw err ?? new Error(`${image} was not refused`);
    // Nothing of the refused image was kept: no layer, no config, no manifest, no name.
    const blobs = await readdir(join(cacheDir, 'blobs', 'sha256')).catch(() => []);
    expect(blobs).toEqual([]);
    const index = await readFile(join(cacheDir, 'index.json'), 'utf8').catch(() => '{"manifests":[]}');
    expect((JSON.parse(index) as { manifests: unknown[] }).manifests).toEqual([]);
    return root;
  }

  it('accepts a GPG-signed image (lookaside over HTTP) under a policy requiring the key', async () => {
    const { result } = await pull('gpg-ok/os:v1', await standardPolicy());
    const pulled = await result;
    expect(pulled.manifestDigest).toBe(digestOf(v1));
    expect(pulled.trust.signatures).toEqual([`signedBy: signature 1 by key ${trusted.fingerprint} accepted`]);
    expect(lookaside.requests).toContain(`/gpg-ok/os@${digestOf(v1).replace(':', '=')}/signature-1`);
  });

  it('accepts the key as armored keyData and among keyPaths', async () => {
    const armored = (await readFile(trusted.publicKeyArmoredPath)).toString('base64');
    const byData = await policyFile('keydata', { [`${host}/gpg-ok`]: [signedBy({ keyData: armored })] });
    await expect((await pull('gpg-ok/os:v1', byData, 'keydata')).result).resolves.toMatchObject({ manifestDigest: digestOf(v1) });
    const byPaths = await policyFile('keypaths', { [`${host}/gpg-ok`]: [signedBy({ keyPaths: [other.publicKeyPath, trusted.publicKeyPath] })] });
    await expect((await pull('gpg-ok/os:v1', byPaths, 'keypaths')).result).resolves.toMatchObject({ manifestDigest: digestOf(v1) });
  });

  it('accepts a sigstore-signed image (attachment in the registry) under a policy requiring the key', async () => {
    const { result } = await pull('sig-ok/os:v1', await standardPolicy());
    const pulled = await result;
    expect(pulled.manifestDigest).toBe(digestOf(v1));
    expect(pulled.trust.signatures).toEqual(['sigstoreSigned: signature 1 of 1 accepted']);
  });

  it('accepts a signed image pulled by digest (matchRepoDigestOrExact: same repository)', async () => {
    const policy = await standardPolicy();
    await expect((await pull(`sig-ok/os@${digestOf(v1)}`, policy, 'sig-by-digest')).result).resolves.toMatchObject({ manifestDigest: digestOf(v1) });
    await expect((await pull(`gpg-ok/os@${digestOf(v1)}`, policy, 'gpg-by-digest')).result).resolves.toMatchObject({ manifestDigest: digestOf(v1) });
  });

  it.each([
    ['gpg-unsigned/os:v1', /signedBy: no signature found \(looked for http:\/\/127\.0\.0\.1:\d+\/gpg-unsigned\/os@sha256=[0-9a-f]{64}\/signature-1\)/],
    ['gpg-otherkey/os:v1', /signedBy: signed by another key \([0-9A-F]{40}, not in the policy's keys\)/],
    ['gpg-identity/os:v1', /signedBy: identity mismatch: the signature is for 127\.0\.0\.1:\d+\/somewhere-else\/os:v1, not 127\.0\.0\.1:\d+\/gpg-identity\/os:v1/],
    ['gpg-tampered/os:v1', /signedBy: (the cryptographic signature is invalid|gpgv found no valid signature|gpgv could not check it)/],
    ['gpg-otherdigest/os:v1', /signedBy: digest mismatch: the signature is for manifest sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}/],
    ['sig-unsigned/os:v1', /sigstoreSigned: no signature found \(no sigstore attachment sha256-[0-9a-f]{64}\.sig in 127\.0\.0\.1:\d+\/sig-unsigned\/os\)/],
    ['sig-otherkey/os:v1', /sigstoreSigned: signed by another key \(or altered\)/],
    ['sig-identity/os:v1', /sigstoreSigned: identity mismatch: the signature is for 127\.0\.0\.1:\d+\/somewhere-else\/os:v1/],
    ['sig-tampered/os:v1', /sigstoreSigned: signed by another key \(or altered\)/],
    ['sig-otherdigest/os:v1', /sigstoreSigned: digest mismatch: the signature is for manifest sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}/],
  ])('refuses %s with the reason, keeping nothing', async (image, reason) => {
    const err = await refusedPull(image, await standardPolicy());
    expect(err.message).toMatch(new RegExp(`^image 127\\.0\\.0\\.1:\\d+/${image.replace(/[/.]/g, '\\$&')} \\(sha256:[0-9a-f]{64}\\) is refused by the signature policy .*standard\\.json, transports\\.docker "127\\.0\\.0\\.1:\\d+/${image.split('/')[0]}", `));
    expect(err.message).toMatch(reason);
    expect(err.hint).toMatch(/skopeo copy --sign-by/);
  });

  it('the digest-mismatch case really has a signature for the other digest', async () => {
    expect(digestOf(v1)).not.toBe(digestOf(v2));
    // The same signature is accepted where it belongs.
    await expect((await pull('sig-otherdigest/os:v2', await standardPolicy(), 'sig-v2')).result).resolves.toMatchObject({ manifestDigest: digestOf(v2) });
    await expect((await pull('gpg-otherdigest/os:v2', await standardPolicy(), 'gpg-v2')).result).resolves.toMatchObject({ manifestDigest: digestOf(v2) });
  });

  it('a reject default refuses everything the policy does not name; an insecureAcceptAnything scope passes', async () => {
    const policy = await standardPolicy();
    const err = await refusedPull('elsewhere/os:v1', policy);
    expect(err.message).toMatch(/is refused by the signature policy .*standard\.json, default, reject: this scope rejects every image/);
    await expect((await pull('open/os:v1', policy)).result).resolves.toMatchObject({ manifestDigest: digestOf(v1) });
    // Refused before any network: nothing listens on port 1.
    const trust = await ImageTrust.load({ policyPaths: { explicit: policy }, registriesDPaths: { dir: registriesD } });
    const early = await pullImage(parseReference('127.0.0.1:1/elsewhere/os:v1'), { cacheDir: join(work, 'cache', 'early'), trust }).catch((e: unknown) => unwrapContext(e).root as Error);
    expect((early as Error).message).toMatch(/^image 127\.0\.0\.1:1\/elsewhere\/os:v1 is refused by the signature policy .*standard\.json, default, reject: this scope rejects every image$/);
  });

  it('every requirement of a scope must hold: GPG and sigstore both required refuses an image with one', async () => {
    const both = await policyFile('both', { [`${host}/sig-ok`]: [sigstoreSigned(), signedBy()] });
    const err = await refusedPull('sig-ok/os:v1', both);
    expect(err.message).toMatch(/requirement 2 of 2 \(signedBy\): no signature found/);
  });

  it('a matchRepository identity accepts a signature for another tag of the same repository', async () => {
    const policy = await policyFile('repo', { [`${host}/sig-ok`]: [sigstoreSigned({ keyPath: sigTrusted.publicKeyPath, signedIdentity: { type: 'matchRepository' } })] });
    await push(v1, 'sig-ok/os:latest');
    await expect((await pull('sig-ok/os:latest', policy, 'latest-repo')).result).resolves.toMatchObject({ manifestDigest: digestOf(v1) });
    const exact = await refusedPull('sig-ok/os:latest', await standardPolicy());
    expect(exact.message).toMatch(/identity mismatch: the signature is for 127\.0\.0\.1:\d+\/sig-ok\/os:v1, not 127\.0\.0\.1:\d+\/sig-ok\/os:latest/);
  });

  it('without use-sigstore-attachments the attachments are not looked for', async () => {
    const plainD = join(work, 'registries.d-plain');
    await mkdir(plainD, { recursive: true });
    const trust = await ImageTrust.load({ policyPaths: { explicit: await standardPolicy() }, registriesDPaths: { dir: plainD } });
    const err = await pullImage(parseReference(`${host}/sig-ok/os:v1`), { cacheDir: join(work, 'cache', 'plain'), trust }).catch((e: unknown) => unwrapContext(e).root as Error);
    expect((err as Error).message).toMatch(/registries\.d does not enable use-sigstore-attachments/);
  });

  it('--enforce-container-sigpolicy refuses a scope that accepts unsigned images, before any network', async () => {
    // Port 1: nothing listens there, so a refusal that came after any network would read differently.
    const policy = await policyFile('enforce', { '127.0.0.1:1': [{ type: 'insecureAcceptAnything' }], [`${host}/sig-ok`]: [sigstoreSigned()] });
    const trust = await ImageTrust.load({ policyPaths: { explicit: policy }, registriesDPaths: { dir: registriesD }, enforce: true });
    const err = await pullImage(parseReference('127.0.0.1:1/open/os:v1'), { cacheDir: join(work, 'cache', 'enforce'), trust }).catch((e: unknown) => unwrapContext(e).root as Error);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^--enforce-container-sigpolicy: the signature policy .* would accept 127\.0\.0\.1:1\/open\/os:v1 without any signature/);
    // A scope that requires a signature passes the check and the pull goes on.
    await expect(pullImage(parseReference(`${host}/sig-ok/os:v1`), { cacheDir: join(work, 'cache', 'enforced-ok'), trust })).resolves.toMatchObject({ manifestDigest: digestOf(v1) });
  });
});
