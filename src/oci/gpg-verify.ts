/**
 * GPG "simple signing" verification (containers-signature(5)): a signature is an OpenPGP
 * signed message whose literal data is the JSON payload. `gpgv` checks it against a keyring
 * made of exactly the keys a requirement trusts, and reports on a status descriptor which
 * key made it; the payload is what gpgv writes out, never the bytes we were handed.
 *
 * gpgv rather than an OpenPGP implementation of our own: it is what containers/image
 * relies on through gpgme (same algorithms, subkey bindings, expiry and revocation rules),
 * it ships in every Debian-based image (apt needs it), and one call costs ~8 ms.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../core/exec.js';

/** OpenPGP ASCII armor (RFC 4880 §6.2) → the binary packets; binary input is returned as is. */
export function dearmor(data: Uint8Array): Uint8Array {
  const text = Buffer.from(data).toString('latin1');
  if (!text.includes('-----BEGIN PGP')) return data;
  const blocks: Buffer[] = [];
  const armor = /-----BEGIN PGP [A-Z ]+-----\r?\n([\s\S]*?)-----END PGP [A-Z ]+-----/g;
  for (const match of text.matchAll(armor)) {
    const lines = match[1]!.split(/\r?\n/);
    const blank = lines.findIndex((l) => l.trim() === '');
    const body = lines.slice(blank + 1).filter((l) => l.trim() !== '' && !l.startsWith('='));
    blocks.push(Buffer.from(body.join(''), 'base64'));
  }
  if (blocks.length === 0) throw new Error('the key data looks ASCII-armored but has no complete armor block');
  return new Uint8Array(Buffer.concat(blocks));
}

export type GpgOutcome =
  | { ok: true; payload: Uint8Array; signingKey: string; primaryKey: string }
  | { ok: false; why: string; unknownKey?: string };

/** Read gpgv's status lines (DETAILS in GnuPG's doc) into one verdict. */
export function gpgVerdict(status: string): Omit<GpgOutcome & { ok: true }, 'payload'> | { ok: false; why: string; unknownKey?: string } {
  const lines = status.split('\n').filter((l) => l.startsWith('[GNUPG:] ')).map((l) => l.slice('[GNUPG:] '.length).split(' '));
  const of = (keyword: string): string[][] => lines.filter((l) => l[0] === keyword);
  const signatures = of('NEWSIG').length;
  if (signatures > 1) return { ok: false, why: `the signature holds ${signatures} signatures; exactly one is expected` };
  const errsig = of('ERRSIG')[0];
  if (errsig) {
    // ERRSIG <keyid> <pkalgo> <hashalgo> <class> <time> <rc> [<fpr>]; rc 9 = no public key
    return errsig[6] === '9'
      ? { ok: false, why: `it was made by key ${errsig[7] ?? errsig[1]}, which the policy does not trust`, unknownKey: errsig[7] ?? errsig[1] ?? '' }
      : { ok: false, why: `gpgv could not check it (error code ${errsig[6]})` };
  }
  if (of('BADSIG').length > 0) return { ok: false, why: 'the cryptographic signature is invalid (the signed data was altered)' };
  for (const [keyword, why] of [
    ['EXPSIG', 'the signature has expired'],
    ['EXPKEYSIG', 'the signing key has expired'],
    ['REVKEYSIG', 'the signing key has been revoked'],
  ] as const) {
    if (of(keyword).length > 0) return { ok: false, why };
  }
  const valid = of('VALIDSIG')[0];
  if (!valid || of('GOODSIG').length !== 1 || signatures !== 1) return { ok: false, why: 'gpgv found no valid signature in it' };
  // VALIDSIG <fpr> <date> <ts> <expire> <ver> <rsvd> <pkalgo> <hashalgo> <class> <primary-fpr>
  return { ok: true, signingKey: valid[1]!, primaryKey: valid[10] ?? valid[1]! };
}

/** A keyring file gpgv reads, holding the trusted keys; removed by dispose(). */
export class GpgKeyring {
  private constructor(
    private readonly dir: string,
    readonly path: string,
  ) {}

  static async create(keys: readonly Uint8Array[]): Promise<GpgKeyring> {
    const binary = keys.map(dearmor);
    const dir = await mkdtemp(join(tmpdir(), 'bootc-gpgv-'));
    const path = join(dir, 'trusted.gpg');
    await writeFile(path, Buffer.concat(binary), { mode: 0o600 });
    return new GpgKeyring(dir, path);
  }

  /**
   * Verify one signature blob; the payload is what gpgv writes out. The signature goes in on
   * stdin and the payload comes back on stdout (status lines on stderr, each "[GNUPG:] "):
   * no temporary file per signature.
   */
  async verify(signature: Uint8Array): Promise<GpgOutcome> {
    // 0: good; 1: bad signature; 2: other trouble (unknown key, garbage). Status says which.
    const result = await run({
      description: 'Verifying a GPG image signature',
      argv: ['gpgv', '--homedir', this.dir, '--keyring', this.path, '--status-fd', '2', '--output', '-'],
      stdin: signature,
      okExitCodes: [0, 1, 2],
    });
    const verdict = gpgVerdict(result.stderr);
    if (!verdict.ok) return verdict;
    if (result.exitCode !== 0) return { ok: false, why: `gpgv exited with ${result.exitCode}` };
    return { ...verdict, payload: new Uint8Array(Buffer.from(result.stdout, 'utf8')) };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
