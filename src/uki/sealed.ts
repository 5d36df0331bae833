/**
 * Sealed UKIs: built (and usually signed) in the image build, shipped in the image, and
 * installed as they are. Where an image may carry one (DESIGN.md "Image requirements"):
 * `/usr/lib/modules/<kver>/<kver>.efi` (next to the kernel it was built from) or
 * `/boot/EFI/Linux/*.efi` (upstream bootc's place). Its command line must name the
 * deployment through the selector (src/uki/selector.ts), since it cannot know the id.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';
import { entryExists } from '../core/fs-probe.js';
import { DEPLOY_SELECTOR_KARG, selectorInCmdline } from './selector.js';
import { inspectUki, type SigningKey } from './uki.js';

const MODULES_UKI = /^usr\/lib\/modules\/([^/]+)\/([^/]+)\.efi$/;
const BOOT_UKI = /^boot\/EFI\/Linux\/[^/]+\.efi$/;

/** The sealed UKIs among an image's regular files (store paths), in the order we prefer them. */
export function sealedUkiPaths(filePaths: Iterable<string>): string[] {
  const inModules: string[] = [];
  const inBoot: string[] = [];
  for (const path of filePaths) {
    const m = MODULES_UKI.exec(path);
    if (m && m[1] === m[2]) inModules.push(path);
    else if (BOOT_UKI.test(path)) inBoot.push(path);
  }
  return [...inModules.sort(), ...inBoot.sort()];
}

/** The one sealed UKI of a tree (host path), or null; more than one is refused. */
export async function findSealedUki(treeDir: string): Promise<string | null> {
  const candidates: string[] = [];
  const modules = join(treeDir, 'usr/lib/modules');
  for (const kver of await readdir(modules).catch(() => [] as string[])) {
    const path = `usr/lib/modules/${kver}/${kver}.efi`;
    if (await entryExists(join(treeDir, path))) candidates.push(path);
  }
  for (const name of await readdir(join(treeDir, 'boot/EFI/Linux')).catch(() => [] as string[])) {
    candidates.push(`boot/EFI/Linux/${name}`);
  }
  const sealed = sealedUkiPaths(candidates);
  if (sealed.length > 1) {
    throw new UserError(`the image ships more than one UKI: ${sealed.map((p) => `/${p}`).join(', ')}`, {
      hint: 'keep exactly one UKI in the image (one kernel, one UKI)',
    });
  }
  return sealed.length === 1 ? join(treeDir, sealed[0]!) : null;
}

/**
 * The sealed UKI's command line, refused unless it names `selector`: a UKI built from
 * another tree (or with no selector) would boot no deployment, or the wrong one.
 */
export async function checkSealedUki(ukiPath: string, imagePath: string, selector: string): Promise<string> {
  const inspection = await inspectUki(ukiPath);
  const cmdline = inspection.cmdline ?? '';
  const named = selectorInCmdline(cmdline);
  const rebuild = 'build the UKI in the image build with `bootc container ukify` as the last step that changes /usr';
  if (named === null) {
    throw new UserError(`the image's UKI /${imagePath} has no ${DEPLOY_SELECTOR_KARG}= on its command line, so it cannot find its deployment`, { hint: rebuild });
  }
  if (named !== selector) {
    throw new UserError(`the image's UKI /${imagePath} was built for another /usr tree (selector ${named.slice(0, 12)}…, this image's is ${selector.slice(0, 12)}…)`, {
      hint: rebuild,
    });
  }
  return cmdline;
}

/** --uki, or an image that ships its own (sealed) UKI; signing keys need a UKI to sign. */
export function bootsUki(req: { uki?: boolean; signing?: SigningKey }, entries: ReadonlyArray<{ kind: string; path: string }>): boolean {
  const sealed = sealedUkiPaths(entries.filter((e) => e.kind === 'file').map((e) => e.path)).length > 0;
  if (req.signing && !req.uki && !sealed) {
    throw new UserError('--sign-key and --sign-cert sign a UKI, but this build boots a Type #1 entry', { hint: 'add --uki' });
  }
  return req.uki === true || sealed;
}
