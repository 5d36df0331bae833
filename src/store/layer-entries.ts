/**
 * What each tar entry of a layer means for the store, decided without touching the disk:
 * path normalisation and escape checks, OCI whiteouts, hardlink resolution, and the
 * "symlinked parent" rule. The importer feeds headers in tar order and stores file
 * contents; this builder keeps the layer's tree so far and produces the layer index.
 *
 * Rules (OCI image-spec layer.md, plus hardening):
 * - `.wh.<name>` deletes <name> from lower layers; `.wh..wh..opq` clears the lower content
 *   of its directory. Neither is stored as a file. Other `.wh..wh.*` names (aufs
 *   bookkeeping) are dropped.
 * - A hardlink must name an earlier non-directory entry of the same layer (the spec warns
 *   that links into lower layers may fail; we refuse them, and any target outside the image).
 *   It becomes another entry for the same object.
 * - An entry below a path that this layer made a symlink is refused: a naive extractor
 *   would write through the symlink (`a -> /etc`, then `a/passwd`). The merge (tree.ts)
 *   applies the same rule against lower layers, and checkout never follows symlinks.
 * - Device nodes and fifos are not kept (nor anything else under /dev, which is a devtmpfs
 *   at boot); they are counted in `skipped` and the importer prints one warning per layer.
 */
import { UserError } from '../core/errors.js';
import { ancestorsOf, baseNameOf, displayPath, joinEntryPath, normaliseEntryPath, parentOf } from './entry-path.js';
import type { FileEntry, LayerEntry } from './index-format.js';
import type { ObjectMetadata, Xattr } from './object-id.js';
import { normaliseAclMode } from './xattrs.js';

/** A tar header as the importer hands it over: names already decoded to UTF-8. */
export interface TarEntryHeader {
  name: string;
  type: string | null;
  linkname: string | null;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  xattrs: readonly Xattr[];
}

export type EntryAction =
  | { action: 'recorded'; entry: LayerEntry }
  | { action: 'store-file'; path: string; meta: ObjectMetadata }
  | { action: 'skipped'; path: string; why: 'device' | 'under-dev' | 'aufs-metadata' };

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

function layerError(message: string, hint: string): UserError {
  return new UserError(message, { hint });
}

const HOSTILE_HINT = 'the layer is malformed or hostile; rebuild the image with a standard tool (podman, buildah, docker)';

export class LayerIndexBuilder {
  readonly entries: LayerEntry[] = [];
  skipped = 0;
  files = 0;
  bytesTotal = 0;
  /** The layer's own tree so far (not lower layers): path -> latest entry. */
  private readonly byPath = new Map<string, LayerEntry>();

  classify(h: TarEntryHeader): EntryAction {
    const path = normaliseEntryPath(h.name);
    const base = baseNameOf(path);

    if (base.startsWith(WHITEOUT_PREFIX)) return this.whiteout(h.name, path, base);
    this.checkParents(h.name, path);

    if (path === 'dev' || path.startsWith('dev/')) {
      if (path !== 'dev' || h.type !== 'directory') return this.skip(path, 'under-dev');
    }

    switch (h.type) {
      case 'directory': {
        const { mode, xattrs } = normaliseAclMode(h.mode & 0o7777, h.xattrs, true);
        return this.record({ kind: 'dir', path, mode, uid: h.uid, gid: h.gid, xattrs });
      }
      case 'file':
      case 'contiguous-file': {
        if (path === '') throw layerError(`Layer has a regular file as its root directory`, HOSTILE_HINT);
        const { mode, xattrs } = normaliseAclMode(h.mode & 0o7777, h.xattrs, false);
        return { action: 'store-file', path, meta: { mode, uid: h.uid, gid: h.gid, size: h.size, xattrs } };
      }
      case 'symlink':
        if (path === '') throw layerError(`Layer makes the root directory a symlink`, HOSTILE_HINT);
        return this.record({ kind: 'symlink', path, target: h.linkname ?? '', uid: h.uid, gid: h.gid, xattrs: h.xattrs });
      case 'link':
        return this.record(this.resolveHardlink(h, path));
      case 'character-device':
      case 'block-device':
      case 'fifo':
        return this.skip(path, 'device');
      default:
        throw layerError(
          `Layer entry ${displayPath(path)} has an unsupported tar type (${h.type ?? 'unknown'})`,
          'image layers may hold files, directories, symlinks, hardlinks, devices and fifos only',
        );
    }
  }

  /** The importer stored a file's content: record it under its object id. */
  addFile(path: string, object: string, meta: ObjectMetadata): FileEntry {
    const entry: FileEntry = {
      kind: 'file',
      path,
      object,
      mode: meta.mode,
      uid: meta.uid,
      gid: meta.gid,
      size: meta.size,
      xattrs: meta.xattrs,
    };
    this.files++;
    this.bytesTotal += meta.size;
    this.record(entry);
    return entry;
  }

  private record(entry: LayerEntry): EntryAction {
    this.entries.push(entry);
    this.byPath.set(entry.path, entry);
    return { action: 'recorded', entry };
  }

  private skip(path: string, why: 'device' | 'under-dev' | 'aufs-metadata'): EntryAction {
    this.skipped++;
    return { action: 'skipped', path, why };
  }

  private whiteout(raw: string, path: string, base: string): EntryAction {
    const dir = parentOf(path);
    this.checkParents(raw, dir === '' ? 'x' : joinEntryPath(dir, 'x'));
    if (base === OPAQUE_MARKER) return this.record({ kind: 'opaque', path: dir });
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name.startsWith(WHITEOUT_PREFIX)) return this.skip(path, 'aufs-metadata');
    if (name === '' || name === '.' || name === '..') {
      throw layerError(`Layer whiteout ${JSON.stringify(raw)} names no file`, HOSTILE_HINT);
    }
    const entry: LayerEntry = { kind: 'whiteout', path: joinEntryPath(dir, name) };
    this.entries.push(entry);
    return { action: 'recorded', entry };
  }

  private checkParents(raw: string, path: string): void {
    for (const a of ancestorsOf(path)) {
      const e = this.byPath.get(a);
      if (!e) continue;
      if (e.kind === 'symlink') {
        throw layerError(
          `Layer entry ${JSON.stringify(raw)} has a symlinked parent: ${displayPath(a)} is a symlink (to ${JSON.stringify(e.target)}) earlier in the same layer`,
          `writing through it could change files outside the image; ${HOSTILE_HINT}`,
        );
      }
      if (e.kind === 'file') {
        throw layerError(
          `Layer entry ${JSON.stringify(raw)} lies below ${displayPath(a)}, which the same layer made a regular file`,
          HOSTILE_HINT,
        );
      }
    }
  }

  private resolveHardlink(h: TarEntryHeader, path: string): LayerEntry {
    const rawTarget = h.linkname ?? '';
    const target = normaliseEntryPath(rawTarget, `hardlink target of ${JSON.stringify(h.name)}:`);
    const t = this.byPath.get(target);
    if (!t || t.kind === 'whiteout' || t.kind === 'opaque') {
      throw layerError(
        `Layer hardlink ${displayPath(path)} points to ${displayPath(target)}, which is not earlier in the same layer`,
        'a hardlink must name a file stored before it in the same layer tar; rebuild the image',
      );
    }
    if (t.kind === 'dir') {
      throw layerError(`Layer hardlink ${displayPath(path)} points to directory ${displayPath(target)}`, HOSTILE_HINT);
    }
    if (t.kind === 'file') {
      this.files++;
      this.bytesTotal += t.size;
    }
    return { ...t, path };
  }
}
