/**
 * An OCI layout holding fixture:v1 plus one more layer of `files` (paths relative to /,
 * whiteouts as `dir/.wh.name`), tagged `tag`: images that differ from v1 in one detail
 * (an install config, no kargs.d) without building fixtures. v1's blobs are hard-linked.
 */
import { tarOf } from '../privileged/oci/layout-builder.js';
import { writeFixtureWithLayer } from '../privileged/oci/fixture-layout.js';

export async function deriveFixtureV1(dir: string, tag: string, files: Record<string, string | Buffer>, why: string): Promise<string> {
  writeFixtureWithLayer(dir, tag, await tarOf(files), `test: ${why}`);
  return `oci:${dir}:${tag}`;
}

/** The fixture's own kargs.d file (console=ttyS0,115200), which fixture:v1 brings. */
export const FIXTURE_KARGS_D = 'usr/lib/bootc/kargs.d/10-fixture-console.toml';
/** A layer entry that removes it: the image then brings no console argument of its own. */
export const WITHOUT_FIXTURE_CONSOLE = { 'usr/lib/bootc/kargs.d/.wh.10-fixture-console.toml': '' };
