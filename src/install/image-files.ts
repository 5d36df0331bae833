/**
 * Small files of a pulled image read straight from its layers, before anything is imported:
 * the install configuration decides the root filesystem type, and the filesystem has to
 * exist before the image can be imported into it.
 *
 * Layers are applied in order with OCI whiteouts (`.wh.<name>` removes a path, an opaque
 * marker empties a directory), restricted to the files directly inside one directory.
 */
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { withContext } from '../core/errors.js';
import { BlobCache } from '../oci/blob-cache.js';
import { openLayer } from '../oci/layer.js';
import type { PulledImage } from '../oci/pull.js';
import { formatReference } from '../oci/reference.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../store/layer-entries.js';
import { normaliseEntryPath } from '../store/entry-path.js';

/** Install config fragments are a few hundred bytes; anything bigger is not one. */
const MAX_FILE_BYTES = 1024 * 1024;

export interface ImageFile {
  /** Path inside the image, without a leading slash. */
  path: string;
  text: string;
}

/** One layer's changes to `dir`: files written, names whited out, and whether it was emptied. */
interface LayerChanges {
  opaque: boolean;
  removed: Set<string>;
  written: Map<string, string | null>;
}

async function scanLayer(stream: Readable, dir: string): Promise<LayerChanges> {
  const changes: LayerChanges = { opaque: false, removed: new Set(), written: new Map() };
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, entry, next) => {
      const path = normaliseEntryPath(header.name);
      const slash = path.lastIndexOf('/');
      const parent = slash < 0 ? '' : path.slice(0, slash);
      const name = path.slice(slash + 1);
      const take = parent === dir && header.type === 'file' && (header.size ?? 0) <= MAX_FILE_BYTES && !name.startsWith(WHITEOUT_PREFIX);
      if (parent === dir && name === OPAQUE_MARKER) changes.opaque = true;
      else if (parent === dir && name.startsWith(WHITEOUT_PREFIX)) changes.removed.add(name.slice(WHITEOUT_PREFIX.length));
      else if (path === dir && header.type !== 'directory') changes.opaque = true;
      else if (parent === dir && !take) changes.written.set(name, null);
      const chunks: Buffer[] = [];
      entry.on('data', (c: unknown) => {
        if (take) chunks.push(c as Buffer);
      });
      entry.on('end', () => {
        if (take) changes.written.set(name, Buffer.concat(chunks).toString('utf8'));
        next();
      });
      entry.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    stream.on('error', reject);
  });
  stream.pipe(extract);
  await done;
  return changes;
}

/** Regular files directly in `dir` (e.g. `usr/lib/bootc/install`) of the merged image. */
export async function readImageDirectory(pulled: PulledImage, dir: string): Promise<ImageFile[]> {
  return withContext(`Reading /${dir} from image ${formatReference(pulled.reference)}`, async () => {
    const cache = await BlobCache.open(pulled.cacheDir);
    const files = new Map<string, string | null>();
    for (const layer of pulled.layers) {
      const changes = await scanLayer(openLayer(cache, layer.descriptor, layer.diffId, formatReference(pulled.reference)), dir);
      if (changes.opaque) files.clear();
      for (const name of changes.removed) files.delete(name);
      for (const [name, text] of changes.written) files.set(name, text);
    }
    return [...files.entries()]
      .filter((e): e is [string, string] => e[1] !== null)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, text]) => ({ path: `${dir}/${name}`, text }));
  });
}
