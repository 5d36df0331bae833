/**
 * bench/iso: `bootc image build-disk --type iso` against `--type qcow2` of the same image, in
 * the same run, alternating, each with a fresh --store (so both pull the image), by the
 * single executable dist/bootc (the ISO carries it). Also the ISO's size against the image's
 * compressed layers (what the medium must carry at least: the image as an OCI layout, plus
 * the live system's squashfs). Prints one JSON document; asserts nothing.
 *
 *   npx tsx bench/iso.ts [--runs 3] [--image containers-storage:localhost/debian-bootc:12]
 *
 * The default image is the reference base image (`make base-image`): it has what the live
 * installer runs. Targets (issue 13): median ratio iso/qcow2 <= 1.3.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '../src/core/exec.js';
import { REPO, alternate, median, medianSteps, round, timeSteps, type Timed } from './support.js';

const BOOTC = join(REPO, 'dist', 'bootc');

/** Lines of the plain progress and the --verbose exec log that start a step. */
const STEPS: readonly [RegExp, string][] = [
  [/^Importing image$/, 'import'],
  [/^Deploying$/, 'deploy'],
  [/^Writing disk image$/, 'output'],
  [/^debug: exec: mkfs\.ext4 /, 'mkfs'],
  [/^debug: exec: qemu-img convert /, 'convert'],
  [/^debug: exec: mksquashfs /, 'squashfs'],
  [/^debug: exec: mkfs\.fat /, 'boot-fat'],
  [/^debug: exec: xorriso /, 'xorriso'],
];

async function build(image: string, type: 'iso' | 'qcow2', dir: string): Promise<Timed & { outputBytes: number; layerBytes: number }> {
  const store = join(dir, 'store');
  const timed = await timeSteps(
    `bootc image build-disk --type ${type}`,
    [BOOTC, '--verbose', 'image', 'build-disk', image, '--type', type, '--output', join(dir, 'out'), '--store', store, '--work-dir', join(dir, 'work')],
    'pull',
    (line) => STEPS.find(([re]) => re.test(line))?.[1] ?? null,
  );
  const output = type === 'iso' ? join(dir, 'out', 'bootiso', 'install.iso') : join(dir, 'out', 'qcow2', 'disk.qcow2');
  return { ...timed, outputBytes: (await stat(output)).size, layerBytes: await layerBytes(store) };
}

/** The compressed layers of the one image the store holds, from its manifest. */
async function layerBytes(store: string): Promise<number> {
  const index = JSON.parse(await readFile(join(store, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const digest = index.manifests[0]!.digest;
  const manifest = JSON.parse(await readFile(join(store, 'blobs', ...digest.split(':')), 'utf8')) as { layers: Array<{ size: number }> };
  return manifest.layers.reduce((sum, l) => sum + l.size, 0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, image: { type: 'string', default: 'containers-storage:localhost/debian-bootc:12' } },
  });
  const runs = Number(values.runs);
  const image = values.image;
  await run({ description: 'Checking dist/bootc (make dist)', argv: [BOOTC, '--version'] });

  const { ours: iso, peer: qcow2 } = await alternate('iso', runs, (dir) => build(image, 'iso', dir), (dir) => build(image, 'qcow2', dir));
  const isoMedian = median(iso.map((r) => r.seconds));
  const qcow2Median = median(qcow2.map((r) => r.seconds));
  const layers = iso[0]?.layerBytes ?? 0;
  const report = {
    benchmark: 'iso',
    image,
    runs,
    iso: {
      medianSeconds: round(isoMedian),
      seconds: iso.map((r) => round(r.seconds)),
      medianStepSeconds: medianSteps(iso.map((r) => r.steps)),
      bytes: iso[0]?.outputBytes,
    },
    qcow2: {
      medianSeconds: round(qcow2Median),
      seconds: qcow2.map((r) => round(r.seconds)),
      medianStepSeconds: medianSteps(qcow2.map((r) => r.steps)),
      bytes: qcow2[0]?.outputBytes,
    },
    ratio: round(isoMedian / qcow2Median),
    compressedLayerBytes: layers,
    isoSizeOverLayers: layers > 0 ? round((iso[0]?.outputBytes ?? 0) / layers) : null,
    targets: { ratio: '<= 1.3' },
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

await main();
