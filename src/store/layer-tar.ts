/**
 * Reading layer tars with tar-stream, without losing bytes.
 *
 * tar-stream decodes PAX records as UTF-8 text, but the records that carry extended
 * attributes (`SCHILY.xattr.security.capability`, `SCHILY.xattr.system.posix_acl_access`)
 * hold raw binary, as Go's archive/tar (podman, buildah) and GNU tar write them: decoding
 * them as UTF-8 would turn every byte above 0x7f into U+FFFD. So our extractor decodes PAX
 * records itself, byte-preserving (latin1), and asks tar-stream for latin1 names as well;
 * `decodeTarName` then turns names into UTF-8, refusing names that are not.
 * The override is on our own extractor instance only; `tar-stream` is not patched globally.
 */
import tar, { type Extract, type Header } from 'tar-stream';
import { BugError, UserError } from '../core/errors.js';
import { HOST_ONLY_XATTRS, type Xattr } from './object-id.js';

export type PaxRecords = Record<string, string>;

/**
 * Parse a PAX extended header ("<len> <key>=<value>\n" records). Keys are UTF-8 (POSIX
 * says so); values are returned as latin1 strings, i.e. one char per byte.
 */
export function decodePaxRecords(buf: Uint8Array): PaxRecords {
  const out: PaxRecords = {};
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  while (pos < b.length) {
    if (b[pos] === 0) break; // padding
    const space = b.indexOf(0x20, pos);
    if (space < 0) throw malformedPax('a record has no length');
    const len = Number.parseInt(b.toString('latin1', pos, space), 10);
    if (!Number.isInteger(len) || len <= 0 || pos + len > b.length) throw malformedPax('a record length is wrong');
    const end = pos + len;
    if (b[end - 1] !== 0x0a) throw malformedPax('a record does not end in a newline');
    const eq = b.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= end) throw malformedPax('a record has no "="');
    const key = b.toString('utf8', space + 1, eq);
    out[key] = b.toString('latin1', eq + 1, end - 1);
    pos = end;
  }
  return out;
}

function malformedPax(why: string): UserError {
  return new UserError(`Layer tar has a malformed PAX header: ${why}`, {
    hint: 'the layer blob is damaged or was not written by a tar tool; pull or rebuild the image',
  });
}

/**
 * A layer whose bytes are not a tar archive, or end inside one: its digests are right, so the
 * image was built or pushed that way and fetching it again cannot help. `layer` names it as
 * the user saw it in the pull (`layer sha256:… of image …`).
 */
export function damagedLayerTar(layer: string, detail: string): UserError {
  return new UserError(`${layer} is not a valid tar archive: ${detail}`, {
    hint: 'the image is damaged (its layer digests match, so it was built or pushed like this); rebuild or re-push the image',
  });
}

const XATTR_PREFIXES = ['SCHILY.xattr.', 'LIBARCHIVE.xattr.'];

/**
 * The extended attributes a PAX header carries. SCHILY values are raw bytes; libarchive's
 * own records name the attribute URL-encoded and hold the value in base64.
 */
export function xattrsFromPax(pax: PaxRecords | null | undefined): Xattr[] {
  if (!pax) return [];
  const byName = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(pax)) {
    if (key.startsWith('SCHILY.xattr.')) {
      byName.set(key.slice('SCHILY.xattr.'.length), Buffer.from(value, 'latin1'));
    } else if (key.startsWith('LIBARCHIVE.xattr.')) {
      const name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
      if (!byName.has(name)) byName.set(name, Buffer.from(value, 'base64'));
    }
  }
  return [...byName]
    .filter(([name]) => !HOST_ONLY_XATTRS.has(name))
    .map(([name, value]) => ({ name, value }));
}

export function hasXattrRecords(pax: PaxRecords | null | undefined): boolean {
  return !!pax && Object.keys(pax).some((k) => XATTR_PREFIXES.some((p) => k.startsWith(p)));
}

/** Numeric ids too large for the ustar field come in PAX `uid` / `gid` records. */
export function ownerFromHeader(header: Header): { uid: number; gid: number } {
  const pax = header.pax as PaxRecords | null | undefined;
  const uid = pax?.['uid'] !== undefined ? Number.parseInt(pax['uid'], 10) : header.uid;
  const gid = pax?.['gid'] !== undefined ? Number.parseInt(pax['gid'], 10) : header.gid;
  return { uid, gid };
}

interface ExtractInternals {
  _header: { type: string } | null;
  _pax: PaxRecords | null;
  _paxGlobal: PaxRecords | null;
  _decodeLongHeader(buf: Uint8Array): void;
}

/** A tar-stream extractor with latin1 names and byte-preserving PAX records. */
export function createLayerTarExtract(): Extract {
  const extract = tar.extract({ filenameEncoding: 'latin1' } as never);
  const internals = extract as unknown as ExtractInternals;
  if (typeof internals._decodeLongHeader !== 'function' || !('_paxGlobal' in internals)) {
    throw new BugError('tar-stream internals changed: PAX decoding cannot be made binary-safe');
  }
  const original = internals._decodeLongHeader.bind(extract);
  internals._decodeLongHeader = (buf: Uint8Array): void => {
    switch (internals._header?.type) {
      case 'pax-header': {
        const records = decodePaxRecords(buf);
        internals._pax = internals._paxGlobal === null ? records : { ...internals._paxGlobal, ...records };
        return;
      }
      case 'pax-global-header':
        internals._paxGlobal = decodePaxRecords(buf);
        return;
      default:
        original(buf);
    }
  };
  return extract;
}
