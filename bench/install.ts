/**
 * bench/install: `bootc install to-disk --via-loopback` of the fixture:v2 oci-archive onto a
 * fresh 4 GiB file, side by side in the same run with a minimal shell pipeline doing the
 * same onto a loop device: extract the archive, losetup, sfdisk, mkfs.ext4 + mount of the
 * root, `gzip -dc | tar -x` of each layer into it (whiteouts ignored), mkfs.vfat + mcopy of
 * kernel and initramfs to the ESP, sync, fstrim, umount, detach. Runs alternate so both see
 * the same machine load. Prints one JSON document; asserts nothing.
 *
 *   npx tsx bench/install.ts [--runs 3] [--tag v2] [--no-build]   (as root)
 *
 * Ours is the built CLI (`node dist/cli.js`, after `npm run build` unless --no-build), as a
 * user runs it, with a fresh --store each run, so its pull from the archive is counted as
 * the shell pipeline's archive extraction is. Partitions are reached through
 * loop devices over their byte ranges on both sides (the build VM's kernel exposes none).
 * Target (issue 5): median ratio ours/shell <= 1.5.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec.js';
import { ociArchivePath, ociArchiveRef, type FixtureTag } from '../fixtures/paths.js';

import { REPO, alternate, median, medianSteps, round, timeSteps, type Timed } from './support.js';
const DISK_BYTES = 4 * 1024 ** 3;

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

async function sparseFile(path: string): Promise<void> {
  const f = await open(path, 'wx');
  await f.truncate(DISK_BYTES);
  await f.close();
}

async function runOurs(tag: FixtureTag, dir: string): Promise<Timed> {
  const disk = join(dir, 'disk.raw');
  await sparseFile(disk);
  return timeSteps(
    'bootc install to-disk --via-loopback',
    [
      'bash', '-c', 'exec "$@" 2>&1', 'bash',
      process.execPath, join(REPO, 'dist/cli.js'), '--verbose', 'install', 'to-disk', '--via-loopback', disk,
      '--source-imgref', ociArchiveRef(tag), '--store', join(dir, 'store'),
    ],
    'pull',
    (line) => OUR_STEPS.find(([re]) => re.test(line))?.[1] ?? null,
  );
}

async function runShell(tag: FixtureTag, dir: string): Promise<Timed> {
  const disk = join(dir, 'disk.raw');
  await sparseFile(disk);
  return timeSteps(
    'the shell pipeline',
    ['bash', '-c', SHELL_PIPELINE + '\n', 'bash', ociArchivePath(tag), tag, dir, disk],
    'start',
    (line) => /^phase: (\S+)$/.exec(line)?.[1] ?? null,
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
  };
  const runs = Number(opt('--runs', '3'));
  const tag = opt('--tag', 'v2') as FixtureTag;
  if (!args.includes('--no-build')) await run({ description: 'Building the CLI (npm run build)', argv: ['npm', 'run', 'build'], cwd: REPO });
  const { ours, peer: shell } = await alternate('install', runs, (dir) => runOurs(tag, dir), (dir) => runShell(tag, dir));
  const oursMedian = median(ours.map((r) => r.seconds));
  const shellMedian = median(shell.map((r) => r.seconds));
  const report = {
    benchmark: 'install',
    image: ociArchiveRef(tag),
    diskBytes: DISK_BYTES,
    runs,
    ours: { medianSeconds: round(oursMedian), seconds: ours.map((r) => round(r.seconds)), medianSteps: medianSteps(ours.map((r) => r.steps)) },
    shell: { medianSeconds: round(shellMedian), seconds: shell.map((r) => round(r.seconds)), medianSteps: medianSteps(shell.map((r) => r.steps)) },
    medianRatio: round(oursMedian / shellMedian),
    target: { medianRatioAtMost: 1.5 },
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

await main();
