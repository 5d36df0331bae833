/**
 * The disk of the last `image build-disk --store DIR`, kept in `DIR/build-disk/` so the
 * next build updates its ext4 root in place instead of writing it whole:
 *
 *   disk.raw       the last raw disk (sparse)
 *   manifest       the staged tree its root filesystem holds (disk/tree-manifest.ts)
 *   state.json     its layout and the e2fsprogs that made it; written last, so a disk
 *                  without it (an interrupted build) is never reused
 *
 * A build takes the disk: state.json is removed before the disk is touched, and written
 * again only when the build succeeded. Then:
 *
 *   1. describe the new staged tree (a manifest beside the kept one)
 *   2. when the kept disk matches (same root partition start, same e2fsprogs): resize its
 *      root to the new layout (resize2fs), clear everything but the root partition (the
 *      ESP and the GPT are written again as in a cold build), update the root filesystem
 *      (disk/ext4-update.ts), give it the new UUID, check it (`e2fsck -fn` must find
 *      nothing), then index and discard as a cold build does (`e2fsck -fyD -E discard`)
 *   3. on any failure, the root filesystem is built whole (mkfs.ext4), with a warning: an
 *      update never leaves a disk that differs from a cold build's in its files
 *
 * The rebuilt disk has the files a cold build has; inode numbers, timestamps, the UUIDs and
 * where blocks lie differ (test/privileged/build-disk/incremental.test.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/exec.js';
import { InterruptedError, unwrapContext } from '../core/errors.js';
import { warn } from '../core/log.js';
import { fsyncPath, writeFileAtomic } from '../core/durable-file.js';
import { applyTreeUpdate, planTreeUpdate } from '../disk/ext4-update.js';
import type { DiskLayout } from '../disk/gpt.js';
import { writePartitionTable } from '../disk/partition-table.js';
import { writeTreeManifest, type ManifestAlias } from '../disk/tree-manifest.js';
import type { RootFsTarget } from '../disk/root-filesystem.js';
import type { Xattr } from '../store/object-id.js';

const STATE_VERSION = 1;

interface KeptState {
  version: number;
  fsType: 'ext4';
  /** `mke2fs -V`: a newer e2fsprogs may make other features; such a disk is built whole. */
  e2fsprogs: string;
  rootStartBytes: number;
  rootSizeBytes: number;
  totalBytes: number;
  alias: ManifestAlias;
  entries: number;
}

export interface RootFsUpdate {
  added: number;
  removed: number;
  changedDirectories: number;
}

let e2fsprogsVersion: string | null = null;
async function e2fsprogs(): Promise<string> {
  if (e2fsprogsVersion === null) {
    const { stderr } = await run({ description: 'Reading the version of e2fsprogs', argv: ['mke2fs', '-V'] });
    e2fsprogsVersion = stderr.split('\n')[0]!.trim();
  }
  return e2fsprogsVersion;
}

export class PreviousDisk {
  readonly raw: string;
  private readonly manifest: string;
  private readonly newManifest: string;
  private readonly statePath: string;
  private xattrs: Map<string, Xattr[]> | null = null;
  private entries = 0;
  private alias: ManifestAlias | null = null;
  private kept = false;

  private constructor(
    readonly dir: string,
    private readonly state: KeptState | null,
  ) {
    this.raw = join(dir, 'disk.raw');
    this.manifest = join(dir, 'manifest');
    this.newManifest = join(dir, 'manifest.new');
    this.statePath = join(dir, 'state.json');
  }

  /** Takes the kept disk out of the store's hands (its state file removed); a disk without a valid state is dropped. */
  static async take(dir: string): Promise<PreviousDisk> {
    await mkdir(dir, { recursive: true });
    const statePath = join(dir, 'state.json');
    let state: KeptState | null = null;
    try {
      const parsed = JSON.parse(await readFile(statePath, 'utf8')) as KeptState;
      if (parsed.version === STATE_VERSION && existsSync(join(dir, 'disk.raw')) && existsSync(join(dir, 'manifest'))) state = parsed;
    } catch {
      state = null;
    }
    await rm(statePath, { force: true });
    await rm(join(dir, 'manifest.new'), { force: true });
    if (!state) await Promise.all(['disk.raw', 'manifest'].map((name) => rm(join(dir, name), { force: true })));
    return new PreviousDisk(dir, state);
  }

  /** Step 1: the new tree's manifest; false when the tree cannot be described (the disk is then not kept). */
  async describe(root: string, alias: ManifestAlias): Promise<boolean> {
    try {
      const described = await writeTreeManifest(root, this.newManifest, alias);
      this.xattrs = described.xattrs;
      this.entries = described.entries;
      this.alias = alias;
      return true;
    } catch (err) {
      if (unwrapContext(err).root instanceof InterruptedError) throw err;
      warn(`the staged tree cannot be described for the next build (${reason(err)}): the disk is not kept`);
      await rm(this.newManifest, { force: true });
      return false;
    }
  }

  /** Step 2: the kept disk updated to `layout` and the new tree, or null (then the caller builds it whole). */
  async update(root: string, layout: DiskLayout, target: RootFsTarget, workDir: string): Promise<RootFsUpdate | null> {
    const state = this.state;
    if (!state || !this.xattrs || !this.alias || state.rootStartBytes !== layout.root.startBytes || state.e2fsprogs !== (await e2fsprogs())) return null;
    try {
      const plan = planTreeUpdate({
        oldManifest: this.manifest,
        newManifest: this.newManifest,
        sourceRoot: root,
        oldAlias: state.alias,
        newAlias: this.alias,
        xattrs: this.xattrs,
        workDir,
        maxChanges: Math.max(1000, this.entries / 2),
      });
      if (!plan) return null;
      const device = `${this.raw}?offset=${layout.root.startBytes}`;
      await this.resize(state, layout, device);
      await clearOutsideRoot(this.raw, layout);
      await writePartitionTable(this.raw, layout);
      await applyTreeUpdate(device, plan, workDir);
      await run({ description: 'Giving the root filesystem its UUID', argv: ['tune2fs', '-U', target.uuid, device] });
      await run({ description: 'Checking the updated root filesystem', argv: ['e2fsck', '-f', '-n', device] });
      // As after mkfs: directories indexed; and the blocks of removed files discarded (holes in the image).
      await run({ description: 'Indexing the root filesystem directories', argv: ['e2fsck', '-f', '-y', '-D', '-E', 'discard', device], okExitCodes: [0, 1] });
      return { added: plan.added, removed: plan.removed, changedDirectories: plan.changedDirectories };
    } catch (err) {
      if (unwrapContext(err).root instanceof InterruptedError) throw err;
      warn(`the previous build's disk could not be updated (${reason(err)}): the root filesystem is built whole`);
      return null;
    }
  }

  private async resize(state: KeptState, layout: DiskLayout, device: string): Promise<void> {
    const size = layout.root.sizeBytes;
    if (layout.totalBytes > (await stat(this.raw)).size) await truncate(this.raw, layout.totalBytes);
    if (size !== state.rootSizeBytes) {
      await run({ description: 'Resizing the root filesystem to the new layout', argv: ['resize2fs', '-f', device, `${size / 1024}K`] });
    }
    await truncate(this.raw, layout.totalBytes);
  }

  /** After the outputs are written: the disk is kept for the next build. */
  async keep(layout: DiskLayout): Promise<void> {
    // On the medium before its state says it may be reused: a power cut must not leave a
    // kept disk whose unchanged files lost their blocks (only the changed ones are dirty
    // after an update; a cold build flushes the whole disk once).
    await fsyncPath(this.raw);
    // The manifest too: one that lost its tail would leave the files it no longer names in
    // every later disk.
    await fsyncPath(this.newManifest);
    await rename(this.newManifest, this.manifest);
    const state: KeptState = {
      version: STATE_VERSION,
      fsType: 'ext4',
      e2fsprogs: await e2fsprogs(),
      rootStartBytes: layout.root.startBytes,
      rootSizeBytes: layout.root.sizeBytes,
      totalBytes: layout.totalBytes,
      alias: this.alias!,
      entries: this.entries,
    };
    await writeFileAtomic(this.statePath, JSON.stringify(state, null, 2) + '\n', 0o600);
    this.kept = true;
  }

  /** A disk not kept is removed: no half-updated disk stays in the store. */
  async close(): Promise<void> {
    if (this.kept) return;
    await Promise.all([this.raw, this.manifest, this.newManifest, this.statePath].map((path) => rm(path, { force: true })));
  }
}

const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

/** Everything but the root partition becomes a hole, as in a new sparse file: the GPT, ESP and BIOS boot partition are written again. */
async function clearOutsideRoot(raw: string, layout: DiskLayout): Promise<void> {
  const rootEnd = layout.root.startBytes + layout.root.sizeBytes;
  for (const [offset, length] of [
    [0, layout.root.startBytes],
    [rootEnd, layout.totalBytes - rootEnd],
  ] as const) {
    if (length <= 0) continue;
    await run({ description: 'Clearing the previous disk outside its root partition', argv: ['fallocate', '--punch-hole', '--offset', String(offset), '--length', String(length), raw] });
  }
}
