// The pull under test for bench/pull.ts, run from the built dist/ (as `bootc` runs), in a
// process of its own so /usr/bin/time measures its RSS alone. Prints one JSON line.
import { pullImage } from '../dist/oci/pull.js';
import { parseReference } from '../dist/oci/reference.js';

const [ref, cacheDir, architecture] = process.argv.slice(2);
const started = process.hrtime.bigint();
const pulled = await pullImage(parseReference(ref), {
  cacheDir,
  platform: { os: 'linux', architecture },
  verifyDiffIds: process.env.BENCH_VERIFY_DIFFIDS === '1',
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stdout.write(JSON.stringify({ seconds, bytesFetched: pulled.bytesFetched }) + '\n');
