/**
 * Paths inside an image, as the store records them: relative to the image root, no leading
 * `/` or `./`, no empty, `.` or `..` components, no trailing slash; the root itself is "".
 * Every name from a layer tar passes through `normaliseEntryPath`, so nothing downstream
 * (merge, checkout) has to think about escapes again.
 */
import { UserError } from '../core/errors.js';

export const ROOT_PATH = '';

export class PathEscapeError extends UserError {}

/**
 * Normalise a tar entry name (or hardlink target). Leading `/` and `./` are dropped, as
 * `tar -x` does; a `..` component is refused because it could reach outside the image.
 */
export function normaliseEntryPath(raw: string, what = 'entry'): string {
  const out: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      throw new PathEscapeError(`Layer ${what} ${JSON.stringify(raw)} escapes the image root (it has a ".." component)`, {
        hint: 'the layer is malformed or hostile; rebuild the image without ".." in file names',
      });
    }
    out.push(part);
  }
  return out.join('/');
}

/** "" for the root and for top-level names. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? ROOT_PATH : path.slice(0, i);
}

export function baseNameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinEntryPath(dir: string, name: string): string {
  return dir === ROOT_PATH ? name : `${dir}/${name}`;
}

/** Every proper ancestor of `path`, outermost first, not including the root. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  let i = path.indexOf('/');
  while (i >= 0) {
    out.push(path.slice(0, i));
    i = path.indexOf('/', i + 1);
  }
  return out;
}

/** True when `path` is `prefix` or lies below it. */
export function isWithin(path: string, prefix: string): boolean {
  return prefix === ROOT_PATH || path === prefix || path.startsWith(prefix + '/');
}

/** For messages: the path as a user sees it inside the image. */
export function displayPath(path: string): string {
  return '/' + path;
}

/**
 * Tar names reach us as latin1 strings (one char per byte) so no byte is lost; the store
 * keeps UTF-8 names only, as upstream (ostree) does and `bootc container lint` demands.
 */
export function decodeTarName(latin1: string, what: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(latin1)) return latin1;
  try {
    return UTF8.decode(Buffer.from(latin1, 'latin1'));
  } catch {
    throw new UserError(`Layer ${what} ${JSON.stringify(latin1)} is not valid UTF-8`, {
      hint: 'rename the file in the image build; bootc images must use UTF-8 file names',
    });
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
