/**
 * The signature policy on pulls from local transports: `oci:` and `oci-archive:` images are
 * matched by path (the directory or file, then its parents), carry no signatures, and so
 * are refused by a scope that requires one, before anything is cached. Needs only files.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError, unwrapContext } from '../../../src/core/errors.js';
import { ImageTrust } from '../../../src/oci/image-trust.js';
import { pullImage } from '../../../src/oci/pull.js';
import { parseReference } from '../../../src/oci/reference.js';
import { writeTinyOciLayout, type TinyLayout } from '../../support/registry.js';
import { suiteDir } from '../../support/temp-tree.js';

describe('signature policy on oci: layouts', () => {
  let work: string;
  let layout: TinyLayout;

  const scratch = suiteDir('sigpolicy-local');
  beforeAll(async () => {
    work = scratch.path;
    layout = await writeTinyOciLayout(join(work, 'layouts', 'os'), { tag: 'v1' });
  });

  async function trustWith(name: string, oci: Record<string, unknown[]>): Promise<ImageTrust> {
    const path = join(work, `${name}.json`);
    await writeFile(path, JSON.stringify({ default: [{ type: 'reject' }], transports: { oci } }));
    return ImageTrust.load({ policyPaths: { explicit: path } });
  }

  it('a path scope (the layout\'s parent directory) accepts it', async () => {
    const trust = await trustWith('parent', { [join(work, 'layouts')]: [{ type: 'insecureAcceptAnything' }] });
    const pulled = await pullImage(parseReference(`oci:${layout.dir}:v1`), { cacheDir: join(work, 'cache-ok'), trust });
    expect(pulled.manifestDigest).toBe(layout.images[0]!.manifestDigest);
    expect(pulled.trust).toEqual({ scope: `transports.oci ${JSON.stringify(join(work, 'layouts'))}`, signatures: [] });
  });

  it('the directory:tag scope is more specific than the directory', async () => {
    const trust = await trustWith('tag', { [`${layout.dir}:v1`]: [{ type: 'reject' }], [layout.dir]: [{ type: 'insecureAcceptAnything' }] });
    const err = await pullImage(parseReference(`oci:${layout.dir}:v1`), { cacheDir: join(work, 'cache-tag'), trust }).catch((e: unknown) => unwrapContext(e).root);
    expect((err as Error).message).toMatch(new RegExp(`transports\\.oci "${layout.dir}:v1", reject`));
  });

  it('a scope that requires a signature refuses it: local layouts carry none; nothing is cached', async () => {
    const trust = await trustWith('signed', { [layout.dir]: [{ type: 'sigstoreSigned', keyData: Buffer.from('unused').toString('base64') }] });
    const cacheDir = join(work, 'cache-refused');
    const err = await pullImage(parseReference(`oci:${layout.dir}:v1`), { cacheDir, trust }).catch((e: unknown) => unwrapContext(e).root);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/sigstoreSigned: no signature found: oci images carry no sigstore signatures we can read/);
    expect(await readdir(join(cacheDir, 'blobs', 'sha256')).catch(() => [])).toEqual([]);
  });

  it('the global default applies to a path no scope names', async () => {
    const trust = await trustWith('elsewhere', { '/srv/nowhere': [{ type: 'insecureAcceptAnything' }] });
    const err = await pullImage(parseReference(`oci:${layout.dir}:v1`), { cacheDir: join(work, 'cache-default'), trust }).catch((e: unknown) => unwrapContext(e).root);
    expect((err as Error).message).toMatch(/, default, reject: this scope rejects every image/);
  });
});
