/**
 * Content digests as the OCI image spec writes them (`sha256:<64 lowercase hex>`). Only
 * sha256 is verified: it is what every registry and tool in use produces, and accepting a
 * digest we cannot check would defeat the point of content addressing.
 */
import { createHash, type Hash } from 'node:crypto';
import { UserError } from '../core/errors.js';

const SHA256_DIGEST = /^sha256:([a-f0-9]{64})$/;

/** The hex part of a sha256 digest, or a UserError naming `what` (e.g. "layer 2 of image …"). */
export function sha256Hex(digest: string, what: string = 'digest'): string {
  const match = SHA256_DIGEST.exec(digest);
  if (!match) {
    const algorithm = digest.includes(':') ? digest.slice(0, digest.indexOf(':')) : '';
    throw new UserError(
      algorithm !== '' && algorithm !== 'sha256'
        ? `${what} uses the digest algorithm "${algorithm}", which is not supported`
        : `${what} has a malformed digest "${digest}"`,
      { hint: 'images must be addressed by sha256 digests (`sha256:` followed by 64 lowercase hex digits)' },
    );
  }
  return match[1]!;
}

export function isSha256Digest(digest: string): boolean {
  return SHA256_DIGEST.test(digest);
}

export function sha256Digest(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function newSha256(): Hash {
  return createHash('sha256');
}

export function digestOf(hash: Hash): string {
  return `sha256:${hash.digest('hex')}`;
}

/**
 * The short id upstream's progress events use for a layer: the first 21 hex characters of
 * its digest (enough to be unique in any one image, short enough for a terminal line).
 */
export function shortLayerId(digest: string): string {
  const colon = digest.indexOf(':');
  return digest.slice(colon + 1, colon + 1 + 21);
}
