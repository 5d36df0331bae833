import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  chooseChallenge,
  isRetryableNetworkError,
  isRetryableStatus,
  isTlsCertificateError,
  isTlsToPlainHttpError,
  parseWwwAuthenticate,
  pullScope,
  registryErrorSummary,
} from '../../../src/oci/registry-challenge.js';
import { registryApiHost } from '../../../src/oci/registry.js';

describe('WWW-Authenticate', () => {
  it.each([
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/debian:pull' } }],
    ],
    ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
    [
      'Bearer realm="https://r/t",scope="repository:a/b:pull,push",error="insufficient_scope"',
      [{ scheme: 'bearer', params: { realm: 'https://r/t', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' } }],
    ],
    ['bearer Realm=https://r/t, Service=svc', [{ scheme: 'bearer', params: { realm: 'https://r/t', service: 'svc' } }]],
    ['Basic realm="a \\"quoted\\" realm"', [{ scheme: 'basic', params: { realm: 'a "quoted" realm' } }]],
    [
      'Basic realm="x", Bearer realm="https://r/t",service="s"',
      [
        { scheme: 'basic', params: { realm: 'x' } },
        { scheme: 'bearer', params: { realm: 'https://r/t', service: 's' } },
      ],
    ],
    ['', []],
  ])('parses %s', (header, expected) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected);
  });

  it('prefers Bearer, then Basic, and ignores schemes it cannot answer', () => {
    expect(chooseChallenge(parseWwwAuthenticate('Basic realm="x", Bearer realm="y"'))?.scheme).toBe('bearer');
    expect(chooseChallenge(parseWwwAuthenticate('Negotiate, Basic realm="x"'))?.scheme).toBe('basic');
    expect(chooseChallenge(parseWwwAuthenticate('Negotiate'))).toBeNull();
  });

  it('asks for pull scope on the repository', () => {
    expect(pullScope('library/debian')).toBe('repository:library/debian:pull');
  });
});

describe('what is retried', () => {
  it.each([
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [416, false],
    [501, false],
  ])('HTTP %i retryable: %s', (status, expected) => {
    expect(isRetryableStatus(status)).toBe(expected);
  });

  const err = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });
  it('network resets and refusals are retried; DNS failures and TLS errors are not', () => {
    expect(isRetryableNetworkError(err('ECONNRESET'))).toBe(true);
    expect(isRetryableNetworkError(err('ECONNREFUSED'))).toBe(true);
    expect(isRetryableNetworkError(err('ETIMEDOUT'))).toBe(true);
    expect(isRetryableNetworkError(new Error('socket hang up'))).toBe(true);
    expect(isRetryableNetworkError(err('ENOTFOUND'))).toBe(false);
    expect(isRetryableNetworkError(err('ERR_SSL_WRONG_VERSION_NUMBER'))).toBe(false);
  });

  it('recognises TLS spoken to plain HTTP and certificate failures', () => {
    expect(isTlsToPlainHttpError(err('ERR_SSL_WRONG_VERSION_NUMBER', 'ssl3_get_record:wrong version number'))).toBe(true);
    expect(isTlsToPlainHttpError(err('EPROTO', 'SSL routines:ssl3_get_record:wrong version number'))).toBe(true);
    expect(isTlsToPlainHttpError(err('ECONNRESET'))).toBe(false);
    expect(isTlsCertificateError(err('DEPTH_ZERO_SELF_SIGNED_CERT'))).toBe(true);
    expect(isTlsCertificateError(err('ERR_TLS_CERT_ALTNAME_INVALID'))).toBe(true);
    expect(isTlsCertificateError(err('CERT_HAS_EXPIRED'))).toBe(true);
    expect(isTlsCertificateError(err('ECONNREFUSED'))).toBe(false);
  });

  it('backs off exponentially, capped, honouring Retry-After', () => {
    expect([1, 2, 3, 4, 10].map((a) => backoffDelayMs(a, 250, 8000))).toEqual([250, 500, 1000, 2000, 8000]);
    expect(backoffDelayMs(1, 250, 8000, '3')).toBe(3000);
    expect(backoffDelayMs(1, 250, 8000, '3600')).toBe(8000);
    expect(backoffDelayMs(2, 250, 8000, 'Wed, 21 Oct 2015 07:28:00 GMT')).toBe(500);
  });
});

describe('registry error bodies', () => {
  it('summarises the distribution error JSON', () => {
    expect(registryErrorSummary('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}')).toBe('MANIFEST_UNKNOWN: manifest unknown');
    expect(registryErrorSummary('{"errors":[{"code":"A"},{"code":"B","message":"b"}]}')).toBe('A; B: b');
    expect(registryErrorSummary('<html>502</html>')).toBeNull();
    expect(registryErrorSummary('{"errors":[]}')).toBeNull();
  });

  it('connects to Docker Hub at its API host', () => {
    expect(registryApiHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryApiHost('quay.io')).toBe('quay.io');
  });
});
