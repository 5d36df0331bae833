/**
 * Where a deployment's pieces live on the physical root (DESIGN.md "On-disk format").
 * One place for the layout, so install, updates and status never spell a path twice.
 */
import { join } from 'node:path';
import { checkStateroot as checkStaterootName } from '../boot/bls.js';

/** Stateroot names end up in paths and boot entry names: the BLS entry naming rule decides. */
export function checkStateroot(name: string): string {
  checkStaterootName(name);
  return name;
}

export interface SysrootPaths {
  root: string;
  bootcDir: string;
  deployDir(stateroot: string): string;
  deployment(stateroot: string, id: string): string;
  origin(stateroot: string, id: string): string;
  stateVar(stateroot: string): string;
  staged: string;
  /** What `bootc upgrade --check` found last (status `cachedUpdate`). */
  cachedUpdate: string;
  /** Images `bootc switch --retain` keeps in the store without a deployment. */
  retainedImages: string;
  /** The /etc merge conflicts recorded when a deployment was finalised. */
  etcConflicts(stateroot: string, id: string): string;
}

export function sysrootPaths(root: string): SysrootPaths {
  const bootcDir = join(root, 'bootc');
  return {
    root,
    bootcDir,
    deployDir: (s) => join(bootcDir, 'deploy', s),
    deployment: (s, id) => join(bootcDir, 'deploy', s, id),
    origin: (s, id) => join(bootcDir, 'deploy', s, `${id}.origin`),
    stateVar: (s) => join(bootcDir, 'state', s, 'var'),
    staged: join(bootcDir, 'staged'),
    cachedUpdate: join(bootcDir, 'cached-update.json'),
    retainedImages: join(bootcDir, 'retained-images.json'),
    etcConflicts: (s, id) => join(bootcDir, 'deploy', s, `${id}.etc-conflicts`),
  };
}

/**
 * A deployment id: the first 12 hex digits of the manifest digest and a serial, so ids are
 * readable in boot menus and two deployments of one image stay distinct.
 */
export function deploymentId(manifestDigest: string, serial: number): string {
  const hex = manifestDigest.replace(/^sha256:/, '').slice(0, 12);
  return `${hex}.${serial}`;
}

export function nextSerial(existingIds: readonly string[], manifestDigest: string): number {
  const prefix = deploymentId(manifestDigest, 0).replace(/\.0$/, '.');
  let serial = 0;
  for (const id of existingIds) {
    if (!id.startsWith(prefix)) continue;
    const n = Number(id.slice(prefix.length));
    if (Number.isInteger(n) && n >= serial) serial = n + 1;
  }
  return serial;
}
