/**
 * `bootc upgrade`: follow the booted deployment's image (upstream §1.2).
 *
 *   1. under the update lock, pull the image the booted origin follows, or with `--tag` the
 *      same repository at another tag, which it follows from then on (`--check`: manifest
 *      and config only); the booted system's signature policy (/etc/containers/policy.json)
 *      must accept its manifest before anything else of it is read
 *   2. same digest as booted (or as already staged): nothing to do
 *   3. import into the physical root, check out a new deployment with the booted origin's
 *      kargs, copy its kernel and combined initrd to the ESP under bootc/<id>/; no entry yet.
 *      A system booted from a UKI (or an image that ships a sealed one) gets a UKI instead,
 *      staged as EFI/Linux/<name>.staged, which systemd-boot does not list
 *   4. write the staged record (atomic), drop an older staged deployment, write
 *      /run/reboot-required. Finalisation (finalize.ts) writes the entry at shutdown.
 *
 * The ESP is the one mounted at /boot (fstab from install), written through
 * `espInDirectory` (boot/esp.ts says why not mtools there).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cancellation } from '../core/cancel.js';
import { UserError, withContext } from '../core/errors.js';
import { pathExists } from '../core/fs-probe.js';
import { decimalBytes, Progress } from '../core/progress.js';
import { prepareDeploymentBoot } from '../boot/deployment-boot.js';
import { stageUkiInDir } from '../boot/uki-boot-dir.js';
import { espInDirectory } from '../boot/esp.js';
import { UKI_DIR } from '../boot/uki-entry.js';
import { bootsUki, sealedUkiPaths } from '../uki/sealed.js';
import { CERTIFICATE_TABLE_DIRECTORY, parsePe } from '../uki/pe.js';
import { createDeployment, imageCreated, importImage } from '../deploy/deploy.js';
import { sysrootPaths } from '../deploy/paths.js';
import { withSignaturePolicy, type Origin } from '../deploy/origin.js';
import { imageVersion } from '../oci/manifest.js';
import { ImageTrust, type TrustOptions } from '../oci/image-trust.js';
import { fetchManifestAndConfig, pullImage, type PulledLayer } from '../oci/pull.js';
import { formatImageName, formatReference, parseReference } from '../oci/reference.js';
import type { Transport } from '../oci/types.js';
import { imageDir, layerIndexPath, storeLayout } from '../store/layout.js';
import { writeFileAtomic } from '../core/durable-file.js';
import {
  HOST_LOCATIONS,
  loadDeployments,
  renderStagedRecord,
  requireBooted,
  type DeploymentRef,
  type DeploymentsView,
  type DeploymentInfo,
  type StagedRecord,
  type SysrootLocations,
} from './deployments.js';
import { updateLockPath, withUpdateLock } from '../core/lock-file.js';
import { dropStaged, pruneDeployments, removeDeployment } from './cleanup.js';
import { recordCachedUpdate, updateRetainedImages } from './update-records.js';

export const REBOOT_REQUIRED = '/run/reboot-required';

export interface LayerRef {
  /** The diff-id (uncompressed digest): the same content compares equal across compressions. */
  digest: string;
  /** Compressed size, when known. */
  size: number | null;
}

export interface LayerDiff {
  added: LayerRef[];
  removed: LayerRef[];
}

export function diffLayers(from: readonly LayerRef[], to: readonly LayerRef[]): LayerDiff {
  const before = new Set(from.map((l) => l.digest));
  const after = new Set(to.map((l) => l.digest));
  return { added: to.filter((l) => !before.has(l.digest)), removed: from.filter((l) => !after.has(l.digest)) };
}

const sum = (layers: readonly LayerRef[]): number => layers.reduce((n, l) => n + (l.size ?? 0), 0);


/** Upstream's layer summary: "Total new layers: N  Size: …", then removed and added. */
export function renderLayerDiff(totalLayers: readonly LayerRef[], diff: LayerDiff): string {
  return [
    `Total new layers: ${totalLayers.length}    Size: ${decimalBytes(sum(totalLayers))}`,
    `Removed layers:   ${diff.removed.length}` + (diff.removed.every((l) => l.size !== null) ? `    Size: ${decimalBytes(sum(diff.removed))}` : ''),
    `Added layers:     ${diff.added.length}    Size: ${decimalBytes(sum(diff.added))}`,
  ].join('\n') + '\n';
}

export function displayImage(image: Origin['image']): string {
  return image.transport === 'registry' ? image.image : `${image.transport}:${image.image}`;
}

/** "Queued for next boot: …" / "Update available for: …" with Version and Digest lines. */
export function renderImageHeader(headline: string, image: Origin['image'], version: string | undefined, digest: string): string {
  const lines = [`${headline}: ${displayImage(image)}`];
  if (version !== undefined) lines.push(`  Version: ${version}`);
  lines.push(`  Digest: ${digest}`);
  return lines.join('\n') + '\n';
}

/**
 * The booted image's layers by diff-id, from the config importImage kept in the store: the
 * store keeps no manifest of it, so layers are compared by diff-id and a removed layer's
 * size is not known.
 */
async function bootedLayers(sysroot: string, manifestDigest: string): Promise<LayerRef[]> {
  try {
    const config = JSON.parse(await readFile(join(imageDir(storeLayout(sysroot), manifestDigest), 'config.json'), 'utf8')) as {
      diffIds?: string[];
    };
    return (config.diffIds ?? []).map((digest) => ({ digest, size: null }));
  } catch {
    return [];
  }
}

const layersOf = (layers: readonly PulledLayer[]): LayerRef[] => layers.map((l) => ({ digest: l.diffId, size: l.descriptor.size }));

/** `root=` of the running system, so the new entry finds the same root filesystem. */
export function rootArgument(cmdline: string): string | null {
  return cmdline.trim().split(/\s+/).find((a) => a.startsWith('root=')) ?? null;
}

export interface UpgradeOptions {
  check?: boolean;
  /** Stage, but leave it out of finalisation until `fromDownloaded`. */
  downloadOnly?: boolean;
  /** Let the staged download-only deployment be finalised at the next shutdown. */
  fromDownloaded?: boolean;
  /** `bootc switch`: follow this image from now on. */
  switchTo?: Origin['image'];
  /** `bootc switch --retain`: keep the booted image in the store once its deployment is gone. */
  retain?: boolean;
  /** `bootc upgrade --tag T`: follow the same repository at tag T (upstream 1.15). */
  tag?: string;
  /** Blob cache for pulled images. */
  storeDir: string;
  progress?: Progress;
  locations?: SysrootLocations;
  rebootRequiredPath?: string;
  /** The command line as the user typed it, recorded in the lock. */
  command?: string;
  /** Where the signature policy is read (tests); default: the booted system's /etc/containers. */
  trust?: TrustOptions;
}

export type UpgradeOutcome =
  | { kind: 'no-update'; text: string }
  | { kind: 'update-available'; text: string }
  | { kind: 'no-changes'; text: string }
  | { kind: 'already-staged'; text: string }
  | { kind: 'unchanged-spec'; text: string }
  | { kind: 'staged'; text: string; stagedId: string };

/** Same image and transport, and the same enforcement (upstream compares the whole reference). */
const sameImage = (a: Origin['image'], b: Origin['image']): boolean => a.image === b.image && a.transport === b.transport && a.signature === b.signature;

/** An OCI distribution-spec tag. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** `bootc upgrade --tag`: `image` with its tag (and any digest) replaced by `tag`. */
export function retaggedImage(image: Origin['image'], tag: string): Origin['image'] {
  if (!TAG.test(tag)) {
    throw new UserError(`--tag ${JSON.stringify(tag)} is not a tag`, { hint: 'a tag is up to 128 letters, digits, "_", "." and "-", not starting with "." or "-", e.g. --tag v2' });
  }
  const ref = parseReference(image.image, image.transport as Transport);
  if (ref.transport === 'docker-archive') {
    throw new UserError(`the followed image ${displayImage(image)} is a docker-archive, which has no tags`, {
      hint: 'switch to another image with `bootc switch IMAGE`',
    });
  }
  const { digest: _digest, ...untagged } = ref;
  return withSignaturePolicy({ image: formatImageName({ ...untagged, tag }), transport: ref.transport }, image.signature === 'containerPolicy');
}

export async function upgrade(options: UpgradeOptions): Promise<UpgradeOutcome> {
  const loc = options.locations ?? HOST_LOCATIONS;
  const progress = options.progress ?? Progress.silent();
  // Checked before the lock too, so a system not deployed by bootc gets no /sysroot/bootc.
  requireBooted(await loadDeployments(loc));
  const verb = options.switchTo ? 'bootc switch' : 'bootc upgrade';
  return withUpdateLock(updateLockPath(loc.sysroot), options.command ?? verb, async () => {
    let view = await loadDeployments(loc);
    const booted = requireBooted(view);
    if (options.fromDownloaded) return applyDownloaded(loc, view, options);

    // Leftovers of an update a crash cut short, and what the last finalisation left behind.
    await pruneDeployments(loc, { keep: liveDeployments(view), leftovers: true });
    view = await loadDeployments(loc);

    // What the machine follows: a staged switch already changed it.
    const followed = view.staged?.origin.image ?? booted.origin.image;
    const target = options.switchTo ?? (options.tag !== undefined ? retaggedImage(followed, options.tag) : followed);
    if (options.switchTo && sameImage(options.switchTo, followed)) {
      return { kind: 'unchanged-spec', text: 'Image specification is unchanged.\n' };
    }
    const reference = parseReference(target.image, target.transport as Transport);
    const name = displayImage(target);
    const switching = !sameImage(target, booted.origin.image);
    // The booted system's own policy governs what it may become; refused images leave nothing.
    // An image followed with `signature: containerPolicy` (switched or installed with
    // --enforce-container-sigpolicy) must be one the policy requires signed, every time.
    const trust = await ImageTrust.load({ ...options.trust, ...(target.signature === 'containerPolicy' ? { enforce: true } : {}) });

    if (options.check) {
      const meta = await fetchManifestAndConfig(reference, { signal: cancellation.signal, trust });
      if (meta.manifestDigest === booted.origin.manifestDigest || meta.manifestDigest === view.staged?.origin.manifestDigest) {
        await recordCachedUpdate(loc.sysroot, null);
        return { kind: 'no-update', text: 'No update available.\n' };
      }
      await recordCachedUpdate(loc.sysroot, {
        image: { image: target.image, transport: target.transport },
        version: imageVersion(meta.config) ?? null,
        timestamp: imageCreated(meta.config),
        imageDigest: meta.manifestDigest,
        architecture: meta.config.architecture,
      });
      const layers = layersOf(meta.layers);
      const diff = diffLayers(await bootedLayers(loc.sysroot, booted.origin.manifestDigest), layers);
      return {
        kind: 'update-available',
        text: renderImageHeader('Update available for', target, imageVersion(meta.config), meta.manifestDigest) + renderLayerDiff(layers, diff),
      };
    }

    const layout = storeLayout(loc.sysroot);
    const pulled = await pullImage(reference, {
      cacheDir: options.storeDir,
      progress,
      signal: cancellation.signal,
      trust,
      // Layers an earlier deployment brought are in the store already: only new ones travel.
      alreadyHave: (layer) => pathExists(layerIndexPath(layout, layer.diffId)),
    });
    if (!switching && pulled.manifestDigest === booted.origin.manifestDigest) {
      if (view.staged) await dropStaged(loc, view.staged.ref);
      await recordCachedUpdate(loc.sysroot, null);
      return { kind: 'no-changes', text: `No changes in: ${name}\n` };
    }
    if (view.staged && pulled.manifestDigest === view.staged.origin.manifestDigest && sameImage(view.staged.origin.image, target)) {
      if (Boolean(view.stagedRecord?.downloadOnly) !== Boolean(options.downloadOnly)) {
        await setDownloadOnly(loc, view, Boolean(options.downloadOnly));
      }
      return { kind: 'already-staged', text: 'Staged update present, not changed.\n' };
    }
    cancellation.check();

    const imported = await importImage(loc.sysroot, pulled, progress);
    cancellation.check();
    // The next deployment boots the way the booted one does; an image with a sealed UKI, by it.
    const bootType = bootsUki({ uki: booted.origin.bootType === 'uki' }, imported.tree.entries) ? 'uki' : 'type1';
    if (bootType === 'uki') await refuseUnsignedSuccessor(loc, booted, imported.tree.entries);
    const deployment = await createDeployment(loc.sysroot, imported, formatReference(pulled.reference), {
      stateroot: booted.ref.stateroot,
      targetImage: target,
      kargs: booted.origin.kargs,
      architecture: pulled.config.architecture,
      bootType,
    });
    const paths = sysrootPaths(loc.sysroot);
    try {
      const record = await withContext(`Putting the kernel of ${deployment.stateroot}/${deployment.id} on the ESP`, async (): Promise<StagedRecord> => {
        const root = rootArgument(await readFile(loc.cmdlinePath, 'utf8'));
        const work = await mkdtemp(join(loc.sysroot, '.bootc-upgrade-'));
        try {
          const prepared = await prepareDeploymentBoot(
            {
              deploymentDir: deployment.dir,
              stateroot: deployment.stateroot,
              deploymentId: deployment.id,
              rootFsUuid: 'unknown',
              // The running system's own root= (a UKI carries it inside, so it is set here).
              rootMountSpec: root ? root.slice('root='.length) : '',
              // A UKI carries its order inside; finalisation raises it if others passed it.
              bootOrder: view.nextVersion,
              imageVersion: imageVersion(pulled.config) ?? undefined,
              cliKargs: booted.origin.kargs,
              ...(bootType === 'uki' ? { uki: {} } : {}),
            },
            work,
          );
          const downloadOnly = options.downloadOnly ? { downloadOnly: true } : {};
          if (prepared.kind === 'uki') {
            await stageUkiInDir(loc.boot, prepared.ukiFileName, prepared.files[0].hostPath);
            return { kind: 'uki', stateroot: deployment.stateroot, id: deployment.id, ukiFileName: prepared.ukiFileName, ...downloadOnly };
          }
          await espInDirectory(loc.boot).copyIn(prepared.files);
          const { version: _unset, ...entry } = prepared.entry;
          return {
            stateroot: deployment.stateroot,
            id: deployment.id,
            entryFileName: prepared.entryFileName,
            entry: { ...entry, options: prepared.kernelArguments.join(' ') },
            ...downloadOnly,
          };
        } finally {
          await rm(work, { recursive: true, force: true });
        }
      });
      await writeFileAtomic(paths.staged, renderStagedRecord(record), 0o644);
    } catch (err) {
      await removeDeployment(loc, { stateroot: deployment.stateroot, id: deployment.id });
      throw err;
    }
    // The new record already points elsewhere, so the old staged deployment is garbage now.
    if (view.staged) await removeDeployment(loc, view.staged.ref);
    await recordCachedUpdate(loc.sysroot, null);
    if (options.switchTo) {
      const retain = options.retain ? { image: booted.origin.image, imageDigest: booted.origin.manifestDigest } : null;
      await updateRetainedImages(loc.sysroot, pulled.manifestDigest, retain);
    }
    if (!options.downloadOnly) await writeFile(options.rebootRequiredPath ?? REBOOT_REQUIRED, '').catch(() => undefined);

    const layers = layersOf(pulled.layers);
    const diff = diffLayers(await bootedLayers(loc.sysroot, booted.origin.manifestDigest), layers);
    const headline = options.downloadOnly ? 'Downloaded, not applied until `bootc upgrade --from-downloaded`' : 'Queued for next boot';
    return {
      kind: 'staged',
      stagedId: deployment.id,
      text: renderImageHeader(headline, target, imageVersion(pulled.config), pulled.manifestDigest) + renderLayerDiff(layers, diff),
    };
  });
}

/**
 * A machine installed with a signed UKI boots under Secure Boot: a UKI assembled here would
 * be unsigned (no key on the host) and refused by the firmware, so only an image that ships
 * its own (signed) UKI can follow it.
 */
async function refuseUnsignedSuccessor(
  loc: SysrootLocations,
  booted: DeploymentInfo,
  imageEntries: ReadonlyArray<{ kind: string; path: string }>,
): Promise<void> {
  if (booted.entry?.kind !== 'uki') return;
  if (sealedUkiPaths(imageEntries.filter((e) => e.kind === 'file').map((e) => e.path)).length > 0) return;
  const path = join(loc.boot, UKI_DIR, booted.entry.fileName);
  const certificates = parsePe(await readFile(path), path).dataDirectories[CERTIFICATE_TABLE_DIRECTORY];
  if ((certificates?.size ?? 0) === 0) return;
  throw new UserError(`the booted UKI ${path} is signed for Secure Boot, and the new image ships no signed UKI: one built here would be unsigned`, {
    hint: 'build the image with a signed UKI (`bootc container ukify --sign-key K --sign-cert C` as the last step changing /usr); upgrades install it as it is',
  });
}

/** Booted, rollback and staged: what GC keeps. */
export function liveDeployments(view: DeploymentsView): DeploymentRef[] {
  return [view.booted, view.rollback, view.staged].filter((d): d is DeploymentInfo => d !== null).map((d) => d.ref);
}

async function setDownloadOnly(loc: SysrootLocations, view: DeploymentsView, downloadOnly: boolean): Promise<void> {
  const rec = view.stagedRecord;
  if (!rec) return;
  const { downloadOnly: _old, ...rest } = rec;
  await writeFileAtomic(sysrootPaths(loc.sysroot).staged, renderStagedRecord(downloadOnly ? { ...rest, downloadOnly: true } : rest), 0o644);
}

/** `--from-downloaded`: the staged deployment is finalised at the next shutdown after all. */
async function applyDownloaded(loc: SysrootLocations, view: DeploymentsView, options: UpgradeOptions): Promise<UpgradeOutcome> {
  if (!view.staged || !view.stagedRecord) {
    throw new UserError('No staged deployment to apply', { hint: 'download one first with `bootc upgrade --download-only`' });
  }
  const image = view.staged.origin.image;
  if (!view.stagedRecord.downloadOnly) {
    return { kind: 'already-staged', text: `Staged deployment is already set to be applied at the next boot: ${displayImage(image)}\n` };
  }
  await setDownloadOnly(loc, view, false);
  await writeFile(options.rebootRequiredPath ?? REBOOT_REQUIRED, '').catch(() => undefined);
  return {
    kind: 'staged',
    stagedId: view.staged.ref.id,
    text: renderImageHeader('Queued for next boot', image, view.staged.origin.imageVersion ?? undefined, view.staged.origin.manifestDigest),
  };
}
