/**
 * Removing a large directory tree: a staged physical root, a deployment's checkout.
 *
 * `rm -rf` rather than `fs.rm(…, { recursive: true })`: Node's recursive removal starts the
 * removal of every entry of a directory at once. On the 110k-entry tree of a 2 GiB image it
 * held 260 MB and took 4.5 s, where `rm -rf` held 6 MB and took 1.1 s. `--one-file-system`
 * never descends into a filesystem mounted inside the tree: its mount point is left, and
 * the removal fails with rm's message instead of emptying it.
 */
import { run } from './exec.js';

export async function removeTree(path: string): Promise<void> {
  await run({ description: `Removing ${path}`, argv: ['rm', '-r', '-f', '--one-file-system', '--', path] });
}
