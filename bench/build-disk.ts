/**
 * bench/build-disk: `bootc image build-disk` of an oci-archive to qcow2 (fixture:v2, or the
 * generated many-layer image), side by side in the same run with a minimal shell pipeline
 * making a disk of the same image: extract the archive, `gzip -dc | tar -x` each layer
 * (whiteouts ignored), `mkfs.ext4 -d`, `mkfs.vfat` + `mcopy` of kernel and initramfs,
 * `sfdisk` + `dd` into a raw disk, `qemu-img convert -O qcow2`. Runs alternate so both see
 * the same machine load. Prints one JSON document; asserts nothing.
 *
 *   npx tsx bench/build-disk.ts [--runs 3] [--image fixture:v2 | --image large [--layers 60] [--gib 2]] [--no-build]
 *
 * Ours is the built CLI (`node dist/cli.js`, after `npm run build` unless --no-build) with a
 * fresh --store each run, so the pull from the archive is counted as the shell pipeline's
 * archive extraction is. Peak RSS is `/usr/bin/time -f %M` on each side: the largest
 * resident set of the CLI (or bash) and of the tools it waited for (mkfs.ext4, qemu-img…),
 * not their sum. Our CLI's own resident set is also sampled by step. Each side prints step
 * markers; the step times show what dominates, and our import's layer starts are timed.
 * Targets (issue 4): median ratio ours/shell <= 1.5; peak RSS <= 300 MB. Issue 17: ratio
 * <= 0.7 and peak RSS <= 200 MB on both images.
 */
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../src/core/exec.js';

import {
  REPO,
  alternate,
  benchImage,
  flagValue,
  imageReport,
  median,
  oursReport,
  peerReport,
  readPeakRssKiB,
  round,
  timeSteps,
  underTime,
  type BenchImage,
  type Timed,
} from './support.js';

/**
 * The shell side. Sizes as ours: a 1 GiB ESP; the root filesystem gets the tree's size plus
 * 30 % and 64 MiB (ours plans its own headroom; the report gives both disk sizes).
 */
const SHELL_PIPELINE = String.raw`
set -euo pipefail
archive=$1 tag=$2 w=$3
for tool in jq tar gzip mkfs.ext4 mkfs.vfat mmd mcopy sfdisk dd qemu-img; do
  command -v "$tool" >/dev/null || { echo "the shell pipeline needs $tool" >&2; exit 1; }
done
echo "phase: extract"
mkdir -p "$w/layout" "$w/rootfs"
tar -xf "$archive" -C "$w/layout"
blob() { echo "$w/layout/blobs/\${1%%:*}/\${1#*:}"; }
manifest=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$w/layout/index.json")
echo "phase: layers"
for layer in $(jq -r '.layers[].digest' "$(blob "$manifest")"); do
  gzip -dc "$(blob "$layer")" | tar -x --numeric-owner --xattrs --xattrs-include='*' --exclude='.wh.*' -C "$w/rootfs" -f -
done
kdir=$(echo "$w"/rootfs/usr/lib/modules/*)
echo "phase: mkfs"
used=$(du -s --block-size=1 "$w/rootfs" | cut -f1)
root_mib=$(( used * 13 / 10 / 1048576 + 64 ))
esp_mib=1024
truncate -s "\${root_mib}M" "$w/root.img"
mkfs.ext4 -q -L root -d "$w/rootfs" "$w/root.img"
echo "phase: esp"
truncate -s "\${esp_mib}M" "$w/esp.img"
mkfs.vfat -F 32 -n ESP "$w/esp.img" >/dev/null
mmd -i "$w/esp.img" ::/boot
mcopy -i "$w/esp.img" "$kdir/vmlinuz" "$kdir/initramfs.img" ::/boot/
echo "phase: disk"
truncate -s $(( 1 + esp_mib + root_mib + 1 ))M "$w/disk.raw"
sfdisk -q "$w/disk.raw" <<SFDISK
label: gpt
start=1MiB, size=\${esp_mib}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
start=$(( 1 + esp_mib ))MiB, size=\${root_mib}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
SFDISK
dd if="$w/esp.img" of="$w/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$w/root.img" of="$w/disk.raw" bs=1M seek=$(( 1 + esp_mib )) conv=notrunc,sparse status=none
echo "phase: convert"
qemu-img convert -O qcow2 "$w/disk.raw" "$w/disk.qcow2"
`.replaceAll('\\$', '$');

/** Lines of our CLI's plain progress and --verbose exec log that start a step. */
const OUR_STEPS: readonly [RegExp, string][] = [
  [/^Importing image$/, 'import'],
  [/^Deploying$/, 'deploy'],
  [/^Writing disk image$/, 'disk-prep'],
  [/^debug: exec: getfattr .* -R /, 'describe'],
  [/^debug: exec: mkfs\.ext4 /, 'mkfs'],
  // A rebuild with a kept disk: its root resized, cleared around, updated by debugfs, checked.
  [/^debug: exec: (resize2fs|fallocate) /, 'ext4-update'],
  [/^debug: exec: mkfs\.fat /, 'esp'],
  [/^debug: exec: qemu-img convert /, 'convert'],
];

export interface BuildDiskRun extends Timed {
  peakRssKiB: number;
  diskVirtualBytes: number;
}

/** One `bootc image build-disk` of `archiveRef` to qcow2 in `dir`, with the blob store `store`. */
export async function buildDiskOurs(archiveRef: string, dir: string, store: string): Promise<BuildDiskRun> {
  const rssFile = join(dir, 'maxrss');
  const output = join(dir, 'output');
  const timed = await timeSteps(
    'bootc image build-disk (built CLI)',
    underTime(
      rssFile,
      [
        process.execPath, join(REPO, 'dist/cli.js'), '--verbose', 'image', 'build-disk', archiveRef,
        '--type', 'qcow2', '--output', output, '--store', store, '--work-dir', join(dir, 'work'),
      ],
      true,
    ),
    'pull',
    (line) => OUR_STEPS.find(([re]) => re.test(line))?.[1] ?? null,
    { sampleRssOf: realpathSync(process.execPath) },
  );
  return { ...timed, peakRssKiB: await readPeakRssKiB(rssFile), diskVirtualBytes: await virtualSize(join(output, 'qcow2', 'disk.qcow2')) };
}

async function runShell(image: BenchImage, dir: string): Promise<Timed & { peakRssKiB: number; diskVirtualBytes: number }> {
  const rssFile = join(dir, 'maxrss');
  const timed = await timeSteps(
    'the shell pipeline',
    underTime(rssFile, ['bash', '-c', SHELL_PIPELINE + '\n', 'bash', image.archivePath, image.tag, dir], false),
    'start',
    (line) => /^phase: (\S+)$/.exec(line)?.[1] ?? null,
  );
  return { ...timed, peakRssKiB: await readPeakRssKiB(rssFile), diskVirtualBytes: await virtualSize(join(dir, 'disk.qcow2')) };
}

async function virtualSize(qcow2: string): Promise<number> {
  const { stdout } = await run({ description: 'Reading the disk size', argv: ['qemu-img', 'info', '--output=json', qcow2] });
  return (JSON.parse(stdout) as { 'virtual-size': number })['virtual-size'];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const runs = Number(flagValue(args, '--runs') ?? 3);
  const image = await benchImage(args);
  if (!args.includes('--no-build')) await run({ description: 'Building the CLI (npm run build)', argv: ['npm', 'run', 'build'], cwd: REPO });

  const { ours, peer: shell } = await alternate(
    'build-disk',
    runs,
    (dir) => buildDiskOurs(image.archiveRef, dir, join(dir, 'store')),
    (dir) => runShell(image, dir),
  );
  const oursMedian = median(ours.map((r) => r.seconds));
  const shellMedian = median(shell.map((r) => r.seconds));
  const report = {
    benchmark: 'build-disk',
    image: imageReport(image),
    runs,
    ours: { ...oursReport(ours, image), diskVirtualBytes: ours[0]?.diskVirtualBytes, freshStoreEachRun: true },
    shell: { ...peerReport(shell), diskVirtualBytes: shell[0]?.diskVirtualBytes },
    ratio: round(oursMedian / shellMedian),
    targets: { ratio: '<= 1.5 (issue 17: <= 0.7)', peakRssMiB: '<= 286 (300 MB; issue 17: <= 190, 200 MB)' },
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

// rebuild.ts imports the runner; only `npx tsx bench/build-disk.ts` runs the bench.
if (import.meta.url === `file://${process.argv[1]}`) await main();
