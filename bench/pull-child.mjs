// The pull under test for bench/pull.ts, run from the built dist/ (as `bootc` runs), in a
// process of its own so /usr/bin/time measures its RSS alone. Prints one JSON line: the
// pull's seconds, the bytes it fetched and its steps, told by its progress events:
// manifest+config (until the first layer event), layers (until every layer is done),
// finish (storing manifest and config, naming the image).
import { Progress } from '../dist/core/progress.js';
import { pullImage } from '../dist/oci/pull.js';
import { parseReference } from '../dist/oci/reference.js';

const [ref, cacheDir, architecture] = process.argv.slice(2);
const started = process.hrtime.bigint();
const since = () => Number(process.hrtime.bigint() - started) / 1e9;
let firstLayerEvent;
let layersDone;
const stepSink = {
  handle(event) {
    if (event.type !== 'ProgressBytes' || event.task !== 'pulling') return;
    firstLayerEvent ??= since();
    if (event.steps === event.stepsTotal) layersDone ??= since();
  },
  async close() {},
};
const pulled = await pullImage(parseReference(ref), {
  cacheDir,
  platform: { os: 'linux', architecture },
  verifyDiffIds: process.env.BENCH_VERIFY_DIFFIDS === '1',
  progress: new Progress([stepSink]),
});
const seconds = since();
const steps = {
  'manifest+config': firstLayerEvent ?? seconds,
  layers: (layersDone ?? seconds) - (firstLayerEvent ?? seconds),
  finish: seconds - (layersDone ?? seconds),
};
process.stdout.write(JSON.stringify({ seconds, bytesFetched: pulled.bytesFetched, steps }) + '\n');
