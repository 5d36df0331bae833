/**
 * bench/install: `bootc install to-disk --via-loopback` of an oci-archive (fixture:v2, or
 * the generated many-layer image) onto a fresh sparse file (4 GiB, or the image's size
 * plus room), side by side in the same run with a minimal shell pipeline doing the
 * same onto a loop device: extract the archive, losetup, sfdisk, mkfs.ext4 + mount of the
 * root, `gzip -dc | tar -x` of each layer into it (whiteouts ignored), mkfs.vfat + mcopy of
 * kernel and initramfs to the ESP, sync, fstrim, umount, detach. Runs alternate so both see
 * the same machine load. Prints one JSON document; asserts nothing.
 *
 *   npx tsx bench/install.ts [--runs 3] [--image fixture:v2 | --image large [--layers 60] [--gib 2]] [--no-build]   (as root)
 *
 * Ours is the built CLI (`node dist/cli.js`, after `npm run build` unless --no-build), as a
 * user runs it, with a fresh --store each run, so its pull from the archive is counted as
 * the shell pipeline's archive extraction is. Partitions are reached through
 * loop devices over their byte ranges on both sides (the build VM's kernel exposes none).
 * Peak RSS is `/usr/bin/time -f %M` on each side (the largest of the program and the tools
 * it waited for); our CLI's own resident set is also sampled by step.
 * Targets (issue 5): median ratio ours/shell <= 1.5. Issue 17: <= 1.1, peak RSS <= 200 MB.
 */
import { realpathSync } from 'node:fs';
import { open } from 'node:fs/promises';
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

const GiB = 1024 ** 3;
/** The fixture's disk (sparse: an unused byte costs nothing). */
const DISK_BYTES = 4 * GiB;

/** The generated image's files on top of the fixture's 4 GiB, with a quarter for filesystem overhead. */
function diskBytesFor(image: BenchImage): number {
  const generated = image.generated?.generatedUncompressedBytes ?? 0;
  return Math.ceil((DISK_BYTES + 1.25 * generated) / GiB) * GiB;
}

const SHELL_PIPELINE = String.raw`
set -euo pipefail
archive=$1 tag=$2 w=$3 disk=$4
loop= esploop= rootloop=
cleanup() {
  mountpoint -q "$w/mnt" && umount "$w/mnt"
  for l in $rootloop $esploop $loop; do losetup -d "$l"; done
}
trap cleanup EXIT
echo "phase: extract"
mkdir -p "$w/layout" "$w/mnt"
tar -xf "$archive" -C "$w/layout"
blob() { echo "$w/layout/blobs/\${1%%:*}/\${1#*:}"; }
manifest=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$w/layout/index.json")
echo "phase: partition"
loop=$(losetup --find --show "$disk")
sfdisk -q "$loop" <<SFDISK
label: gpt
start=1MiB, size=1024MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI-SYSTEM"
start=1025MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"
SFDISK
size=$(blockdev --getsize64 "$loop")
esploop=$(losetup --find --show --offset $((1 << 20)) --sizelimit $((1024 << 20)) "$loop")
rootloop=$(losetup --find --show --offset $((1025 << 20)) --sizelimit $((size - (1026 << 20))) "$loop")
echo "phase: mkfs"
mkfs.ext4 -q -F -L root "$rootloop"
mount "$rootloop" "$w/mnt"
echo "phase: layers"
for layer in $(jq -r '.layers[].digest' "$(blob "$manifest")"); do
  gzip -dc "$(blob "$layer")" | tar -x --numeric-owner --xattrs --xattrs-include='*' --exclude='.wh.*' -C "$w/mnt" -f -
done
echo "phase: esp"
kdir=$(echo "$w"/mnt/usr/lib/modules/*)
mkfs.vfat -F 32 -n EFI-SYSTEM "$esploop" >/dev/null
mmd -i "$esploop" ::/boot
mcopy -i "$esploop" "$kdir/vmlinuz" "$kdir/initramfs.img" ::/boot/
echo "phase: finalise"
sync -f "$w/mnt"
fstrim --quiet-unsupported "$w/mnt"
mount -o remount,ro "$w/mnt"
`.replaceAll('\\$', '$');

/** Lines of our CLI's output and --verbose exec log that start a step. */
const OUR_STEPS: readonly [RegExp, string][] = [
  [/^debug: exec: sfdisk /, 'partition'],
  [/^debug: exec: mkfs\.ext4 /, 'mkfs'],
  [/^debug: exec: mkfs\.fat /, 'esp'],
  // Import and deployment print no marker between them.
  [/^Importing layer 1\//, 'import+deploy'],
  [/^debug: exec: .*mcopy .*systemd\/boot\//, 'boot'],
  // The importer syncs the object store too; only the sync of the whole root is finalising.
  [/^debug: exec: sync -f \/run\/bootc\/mounts\/rootfs-\w+$/, 'finalise'],
];

async function sparseFile(path: string, bytes: number): Promise<void> {
  const f = await open(path, 'wx');
  await f.truncate(bytes);
  await f.close();
}

async function runOurs(image: BenchImage, dir: string): Promise<Timed & { peakRssKiB: number }> {
  const disk = join(dir, 'disk.raw');
  const rssFile = join(dir, 'maxrss');
  await sparseFile(disk, diskBytesFor(image));
  const timed = await timeSteps(
    'bootc install to-disk --via-loopback',
    underTime(
      rssFile,
      [
        process.execPath, join(REPO, 'dist/cli.js'), '--verbose', 'install', 'to-disk', '--via-loopback', disk,
        '--source-imgref', image.archiveRef, '--store', join(dir, 'store'),
      ],
      true,
    ),
    'pull',
    (line) => OUR_STEPS.find(([re]) => re.test(line))?.[1] ?? null,
    { sampleRssOf: realpathSync(process.execPath) },
  );
  return { ...timed, peakRssKiB: await readPeakRssKiB(rssFile) };
}

async function runShell(image: BenchImage, dir: string): Promise<Timed & { peakRssKiB: number }> {
  const disk = join(dir, 'disk.raw');
  const rssFile = join(dir, 'maxrss');
  await sparseFile(disk, diskBytesFor(image));
  const timed = await timeSteps(
    'the shell pipeline',
    underTime(rssFile, ['bash', '-c', SHELL_PIPELINE + '\n', 'bash', image.archivePath, image.tag, dir, disk], false),
    'start',
    (line) => /^phase: (\S+)$/.exec(line)?.[1] ?? null,
  );
  return { ...timed, peakRssKiB: await readPeakRssKiB(rssFile) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const runs = Number(flagValue(args, '--runs') ?? 3);
  const image = await benchImage(args);
  if (!args.includes('--no-build')) await run({ description: 'Building the CLI (npm run build)', argv: ['npm', 'run', 'build'], cwd: REPO });
  const { ours, peer: shell } = await alternate('install', runs, (dir) => runOurs(image, dir), (dir) => runShell(image, dir));
  const oursMedian = median(ours.map((r) => r.seconds));
  const shellMedian = median(shell.map((r) => r.seconds));
  const report = {
    benchmark: 'install',
    image: imageReport(image),
    diskBytes: diskBytesFor(image),
    runs,
    ours: oursReport(ours, image),
    shell: peerReport(shell),
    medianRatio: round(oursMedian / shellMedian),
    target: { medianRatioAtMost: '1.5 (issue 17: 1.1)', peakRssMiBAtMost: '190 (200 MB, issue 17)' },
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

await main();
