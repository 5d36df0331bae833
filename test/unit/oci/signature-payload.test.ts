import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dearmor, gpgVerdict } from '../../../src/oci/gpg-verify.js';
import { parseDockerReference } from '../../../src/oci/reference.js';
import { parseRegistriesD, signatureStorageFor } from '../../../src/oci/registries-d.js';
import { SIMPLE_SIGNING_TYPE, digestMatchesManifest, identityProblem, parseSignaturePayload, remapReference } from '../../../src/oci/signature-payload.js';
import type { SignedIdentity } from '../../../src/oci/signature-policy.js';
import { lookasideSignatureUrl, sigstoreAttachmentTag } from '../../../src/oci/signature-sources.js';

const D = 'sha256:' + 'b'.repeat(64);
const payload = (critical: unknown, optional: unknown = { creator: 'test' }): Uint8Array => new Uint8Array(Buffer.from(JSON.stringify({ critical, optional })));
const good = { type: SIMPLE_SIGNING_TYPE, image: { 'docker-manifest-digest': D }, identity: { 'docker-reference': 'reg.example/os:v1' } };

describe('parseSignaturePayload', () => {
  it('reads digest and identity', () => {
    expect(parseSignaturePayload(payload(good), SIMPLE_SIGNING_TYPE)).toEqual({ manifestDigest: D, dockerReference: 'reg.example/os:v1' });
  });
  it.each([
    ['another type', { ...good, type: 'cosign container image signature' }, /critical.type/],
    ['an unknown critical field', { ...good, extra: true }, /unknown field "extra"/],
    ['an unknown image field', { ...good, image: { 'docker-manifest-digest': D, size: 1 } }, /unknown field "size"/],
    ['no digest', { ...good, image: {} }, /not a digest/],
    ['a reference that is not a string', { ...good, identity: { 'docker-reference': 5 } }, /not a string/],
  ])('refuses %s', (_what, critical, message) => {
    expect(() => parseSignaturePayload(payload(critical), SIMPLE_SIGNING_TYPE)).toThrow(message);
  });
  it('refuses a duplicated critical key', () => {
    const text = `{"critical": {"type": "${SIMPLE_SIGNING_TYPE}", "image": {"docker-manifest-digest": "${D}"}, "identity": {"docker-reference": "a.example/x:1"}, "type": "x"}, "optional": {}}`;
    expect(() => parseSignaturePayload(new Uint8Array(Buffer.from(text)), SIMPLE_SIGNING_TYPE)).toThrow(/twice/);
  });
  it('accepts a null optional (cosign writes one)', () => {
    expect(parseSignaturePayload(payload(good, null), SIMPLE_SIGNING_TYPE).manifestDigest).toBe(D);
  });
});

describe('digestMatchesManifest', () => {
  const bytes = new Uint8Array(Buffer.from('{"schemaVersion":2}'));
  it('checks the bytes in the signature digest algorithm', () => {
    expect(digestMatchesManifest('sha256:' + createHash('sha256').update(bytes).digest('hex'), bytes)).toBe(true);
    expect(digestMatchesManifest('sha512:' + createHash('sha512').update(bytes).digest('hex'), bytes)).toBe(true);
    expect(digestMatchesManifest(D, bytes)).toBe(false);
    expect(digestMatchesManifest('md5:00', bytes)).toBe(false);
  });
});

describe('identityProblem: every signedIdentity form', () => {
  const tagged = parseDockerReference('reg.example/ns/os:v1');
  const digested = parseDockerReference(`reg.example/ns/os@${D}`);
  const rule = (type: string, extra: Record<string, unknown> = {}): SignedIdentity => ({ type, ...extra }) as SignedIdentity;
  it.each([
    // [rule, image, signature claims, accepted?]
    [rule('matchExact'), tagged, 'reg.example/ns/os:v1', true],
    [rule('matchExact'), tagged, 'reg.example/ns/os:v2', false],
    [rule('matchExact'), digested, 'reg.example/ns/os:v1', false],
    [rule('matchExact'), tagged, 'reg.example/ns/os', false],
    [rule('matchRepoDigestOrExact'), tagged, 'reg.example/ns/os:v1', true],
    [rule('matchRepoDigestOrExact'), tagged, 'reg.example/ns/os:latest', false],
    [rule('matchRepoDigestOrExact'), digested, 'reg.example/ns/os:v7', true],
    [rule('matchRepoDigestOrExact'), digested, 'reg.example/ns/other:v7', false],
    [rule('matchRepoDigestOrExact'), digested, 'reg.example/ns/os', false],
    [rule('matchRepository'), tagged, 'reg.example/ns/os:v9', true],
    [rule('matchRepository'), tagged, 'reg.example/ns/os', true],
    [rule('matchRepository'), tagged, 'reg.example/ns/osx:v1', false],
    [rule('exactReference', { dockerReference: parseDockerReference('up.example/os:v1') }), tagged, 'up.example/os:v1', true],
    [rule('exactReference', { dockerReference: parseDockerReference('up.example/os:v1') }), tagged, 'reg.example/ns/os:v1', false],
    [rule('exactRepository', { dockerRepository: 'up.example/os' }), tagged, 'up.example/os:any', true],
    [rule('exactRepository', { dockerRepository: 'up.example/os' }), tagged, 'reg.example/ns/os:v1', false],
    [rule('remapIdentity', { prefix: 'reg.example/ns', signedPrefix: 'vendor.example/prod' }), tagged, 'vendor.example/prod/os:v1', true],
    [rule('remapIdentity', { prefix: 'reg.example/ns', signedPrefix: 'vendor.example/prod' }), tagged, 'reg.example/ns/os:v1', false],
    [rule('remapIdentity', { prefix: 'reg.example/ns', signedPrefix: 'vendor.example/prod' }), digested, 'vendor.example/prod/os:v3', true],
    [rule('remapIdentity', { prefix: 'other.example', signedPrefix: 'vendor.example' }), tagged, 'reg.example/ns/os:v1', true],
    [rule('matchRepoDigestOrExact'), tagged, 'not a reference', false],
  ])('%j for %j claiming %s → %s', (r, image, claimed, accepted) => {
    expect(identityProblem(r, image, claimed) === null).toBe(accepted);
  });
  it('says what was claimed and what was expected', () => {
    expect(identityProblem(rule('matchRepoDigestOrExact'), tagged, 'reg.example/ns/os:v2')).toBe(
      'the signature is for reg.example/ns/os:v2, not reg.example/ns/os:v1 (signedIdentity matchRepoDigestOrExact)',
    );
  });
  it('images without a docker reference need exactReference or exactRepository', () => {
    expect(identityProblem(rule('matchRepository'), null, 'reg.example/ns/os:v1')).toMatch(/no docker reference/);
    expect(identityProblem(rule('exactRepository', { dockerRepository: 'reg.example/ns/os' }), null, 'reg.example/ns/os:v1')).toBeNull();
  });
  it('remaps whole components only', () => {
    expect(remapReference(parseDockerReference('reg.example/nsx/os:v1'), 'reg.example/ns', 'v.example')).toEqual(parseDockerReference('reg.example/nsx/os:v1'));
    expect(remapReference(parseDockerReference('reg.example/ns/os:v1'), 'reg.example/ns/os', 'v.example/os')).toEqual(parseDockerReference('v.example/os:v1'));
  });
});

describe('registries.d', () => {
  const config = parseRegistriesD([
    { file: 'a.yaml', text: 'default-docker:\n  lookaside: https://sigs.example/default\n' },
    {
      file: 'b.yaml',
      text: [
        'docker:',
        '  reg.example:',
        '    use-sigstore-attachments: true',
        '  reg.example/ns/os:',
        '    sigstore: file:///srv/sigs',
        '  "*.example":',
        '    lookaside: http://wild.example/sigs',
      ].join('\n'),
    },
  ]);
  it('takes each field from the most specific scope that sets it', () => {
    expect(signatureStorageFor(config, parseDockerReference('reg.example/ns/os:v1'))).toEqual({ lookaside: 'file:///srv/sigs', useSigstoreAttachments: true });
    expect(signatureStorageFor(config, parseDockerReference('reg.example/other:v1'))).toEqual({ lookaside: 'http://wild.example/sigs', useSigstoreAttachments: true });
    expect(signatureStorageFor(config, parseDockerReference('q.io/other:v1'))).toEqual({ lookaside: 'https://sigs.example/default', useSigstoreAttachments: false });
    expect(signatureStorageFor(config, parseDockerReference('a.b.example/x:v1'))).toEqual({ lookaside: 'http://wild.example/sigs', useSigstoreAttachments: false });
  });
  it('falls back to the local sigstore directory', () => {
    const empty = parseRegistriesD([]);
    expect(signatureStorageFor(empty, parseDockerReference('q.example/x:1'), 0).lookaside).toBe('file:///var/lib/containers/sigstore');
    expect(signatureStorageFor(empty, parseDockerReference('q.example/x:1'), 1000, '/home/u').lookaside).toBe('file:///home/u/.local/share/containers/sigstore');
  });
  it('refuses a namespace declared in two files, and bad values', () => {
    expect(() => parseRegistriesD([{ file: 'a.yaml', text: 'docker:\n  q.example: {}\n' }, { file: 'b.yaml', text: 'docker:\n  q.example: {}\n' }])).toThrow(/also set in a.yaml/);
    expect(() => parseRegistriesD([{ file: 'a.yaml', text: 'docker:\n  q.example:\n    lookaside: ftp://x/y\n' }])).toThrow(/not supported/);
    expect(() => parseRegistriesD([{ file: 'a.yaml', text: 'docker:\n  q.example:\n    use-sigstore-attachments: yes please\n' }])).toThrow(/true or false/);
  });
  it('lookaside URLs: repository path without the host, digest as algo=hex', () => {
    expect(lookasideSignatureUrl('http://127.0.0.1:8000/sigs/', parseDockerReference('127.0.0.1:5000/ns/os:v1'), D, 2).href).toBe(
      `http://127.0.0.1:8000/sigs/ns/os@sha256=${'b'.repeat(64)}/signature-2`,
    );
    expect(sigstoreAttachmentTag(D)).toBe(`sha256-${'b'.repeat(64)}.sig`);
  });
});

describe('gpgv status', () => {
  const F = '0D553AA22C1E10AECB32ABB2CEF0C23FB101D6D6';
  it('a good signature names the signing and primary key', () => {
    const status = [`[GNUPG:] NEWSIG`, `[GNUPG:] GOODSIG CEF0C23FB101D6D6 Test`, `[GNUPG:] VALIDSIG ${F} 2026-12-05 1 0 4 0 1 10 00 ${F}`].join('\n');
    expect(gpgVerdict(status)).toEqual({ ok: true, signingKey: F, primaryKey: F });
  });
  it.each([
    [`[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG CEF0C23FB101D6D6 1 10 00 1 9 ${F}\n[GNUPG:] NO_PUBKEY CEF0C23FB101D6D6`, /made by key 0D55.*does not trust/],
    ['[GNUPG:] NEWSIG\n[GNUPG:] BADSIG CEF0C23FB101D6D6 Test', /invalid/],
    [`[GNUPG:] NEWSIG\n[GNUPG:] EXPKEYSIG CEF0C23FB101D6D6 Test\n[GNUPG:] VALIDSIG ${F} x 1 0 4 0 1 10 00 ${F}`, /key has expired/],
    [`[GNUPG:] NEWSIG\n[GNUPG:] REVKEYSIG CEF0C23FB101D6D6 Test`, /revoked/],
    [`[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG A T\n[GNUPG:] VALIDSIG ${F} x 1 0 4 0 1 10 00 ${F}\n[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG A T`, /exactly one/],
    ['', /no valid signature/],
  ])('refuses %#', (status, why) => {
    const verdict = gpgVerdict(status);
    expect(verdict.ok).toBe(false);
    expect((verdict as { why: string }).why).toMatch(why);
  });
  it('dearmors a public key block', () => {
    const body = Buffer.from([0x99, 0x01, 0x02, 0x03]).toString('base64');
    const armored = `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${body}\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n`;
    expect(Buffer.from(dearmor(new Uint8Array(Buffer.from(armored))))).toEqual(Buffer.from([0x99, 0x01, 0x02, 0x03]));
    expect(dearmor(new Uint8Array([0x99, 1]))).toEqual(new Uint8Array([0x99, 1]));
  });
});
