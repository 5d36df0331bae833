/**
 * `bootc internals pin [--unpin] DEPLOYMENT` (upstream has `ostree admin pin`): a pinned
 * deployment is never removed by the garbage collection after an update, so it stays in
 * the boot menu beside the booted and rollback ones; `bootc status` lists it under
 * otherDeployments once it is neither. The flag lives in the deployment's origin record,
 * rewritten atomically under the update lock.
 */
import { UserError } from '../core/errors.js';
import { renderOrigin } from '../deploy/origin.js';
import { sysrootPaths } from '../deploy/paths.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { HOST_LOCATIONS, loadDeployments, requireBooted, type DeploymentInfo, type DeploymentsView, type SysrootLocations } from './deployments.js';
import { updateLockPath, withUpdateLock } from '../core/lock-file.js';

export interface PinOptions {
  locations?: SysrootLocations;
  command?: string;
}

const refText = (d: DeploymentInfo): string => `${d.ref.stateroot}/${d.ref.id}`;

/** `booted`, `rollback` or `STATEROOT/ID` (as `bootc status -v` shows them). */
function pick(view: DeploymentsView, which: string): DeploymentInfo {
  if (which === 'staged' || (view.staged && which === refText(view.staged))) {
    throw new UserError('a staged deployment cannot be pinned', { hint: 'pin it once it has booted: `bootc internals pin booted`' });
  }
  if (which === 'booted') return view.booted!;
  if (which === 'rollback') {
    if (!view.rollback) throw new UserError('there is no rollback deployment to pin', { hint: 'see `bootc status`' });
    return view.rollback;
  }
  const found = [view.booted, view.rollback, ...view.others].find((d) => d !== null && refText(d) === which);
  if (!found) {
    const known = [view.booted, view.rollback, ...view.others].filter((d): d is DeploymentInfo => d !== null).map(refText);
    throw new UserError(`no deployment ${which}`, { hint: `name one of booted, rollback, ${known.join(', ')} (see \`bootc status -v\`)` });
  }
  return found;
}

export async function setPinned(which: string, pinned: boolean, options: PinOptions = {}): Promise<string> {
  const loc = options.locations ?? HOST_LOCATIONS;
  requireBooted(await loadDeployments(loc));
  return withUpdateLock(updateLockPath(loc.sysroot), options.command ?? `bootc internals pin ${which}`, async () => {
    const deployment = pick(await loadDeployments(loc), which);
    const name = refText(deployment);
    if (deployment.origin.pinned === pinned) return `Deployment ${name} is already ${pinned ? 'pinned' : 'not pinned'}\n`;
    const paths = sysrootPaths(loc.sysroot);
    await writeFileAtomic(paths.origin(deployment.ref.stateroot, deployment.ref.id), renderOrigin({ ...deployment.origin, pinned }), 0o644);
    return `Deployment ${name} is now ${pinned ? 'pinned: updates keep it' : 'unpinned: the next update may remove it'}\n`;
  });
}
