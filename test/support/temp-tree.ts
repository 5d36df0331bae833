/**
 * Temporary directories for tests, and file trees written from an object literal.
 *
 * Every directory is named `bootc-test-<name>-XXXXXX`, so one `ls /tmp/bootc-test-*` shows
 * whatever a run left behind. Pick the form by who owns the directory:
 * - `testDir(name)` in a test or a `beforeEach`: removed when that test finishes, after its
 *   `afterEach` hooks (so an unmount there runs first).
 * - `suiteDir(name)` in a `describe` body or at the top of a file: made before the suite's
 *   own `beforeAll` hooks, removed after its `afterAll` hooks; nothing is made for a skipped suite.
 * - `tempDir(name)` when something else owns it (a VM, a scenario, a script): `using` /
 *   `await using`, or `remove()` by hand.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, onTestFinished } from 'vitest';

/** A disk filesystem whatever /tmp is: user.* and security.* xattrs work, and gigabytes of disk image do not fill RAM. */
export const DISK_TMP = '/var/tmp';

export interface TempDirOptions {
  /** The parent directory; os.tmpdir() unless the test needs a particular filesystem (DISK_TMP). */
  under?: string;
  /** Files to write into the new directory. */
  files?: Tree;
}

/** One entry of a tree: file content, a file with a mode, a symlink, or an empty directory. */
export type TreeEntry = string | Uint8Array | { content: string | Uint8Array; mode: number } | { symlink: string } | { directory: true };

/** Paths relative to the tree's root (parents are made as needed) → what to put there. */
export type Tree = Record<string, TreeEntry>;

/** Writes `tree` under `root`, in the object's order, and returns `root`. */
export function writeTree(root: string, tree: Tree): string {
  for (const [rel, entry] of Object.entries(tree)) {
    const path = join(root, rel);
    if (typeof entry === 'object' && 'directory' in entry) {
      mkdirSync(path, { recursive: true });
      continue;
    }
    mkdirSync(dirname(path), { recursive: true });
    if (typeof entry === 'string' || entry instanceof Uint8Array) writeFileSync(path, entry);
    else if ('symlink' in entry) symlinkSync(entry.symlink, path);
    else {
      writeFileSync(path, entry.content);
      chmodSync(path, entry.mode);
    }
  }
  return root;
}

/** A temporary directory that goes, with everything in it, when disposed. */
export class TempDir implements Disposable, AsyncDisposable {
  readonly path: string;

  constructor(name: string, options: TempDirOptions = {}) {
    this.path = mkdtempSync(join(options.under ?? tmpdir(), `bootc-test-${name}-`));
    if (options.files) writeTree(this.path, options.files);
  }

  /** Removes the directory; idempotent. */
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }

  [Symbol.dispose](): void {
    this.remove();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.remove();
  }
}

/** A temporary directory the caller removes (`using dir = tempDir(...)`, or `dir.remove()`). */
export function tempDir(name: string, options: TempDirOptions = {}): TempDir {
  return new TempDir(name, options);
}

/** A temporary directory removed when the current test finishes; call it in a test or a `beforeEach`. */
export function testDir(name: string, options: TempDirOptions = {}): string {
  const dir = new TempDir(name, options);
  onTestFinished(() => dir.remove());
  return dir.path;
}

/** A directory for a whole suite, made when the suite starts; `path` throws before then. */
export interface SuiteDir {
  readonly path: string;
}

/**
 * A temporary directory for the enclosing `describe` (or the file, at top level). Call it before
 * the suite's other hooks: its `beforeAll` then runs first and its `afterAll` last.
 */
export function suiteDir(name: string, options: TempDirOptions = {}): SuiteDir {
  let dir: TempDir | undefined;
  beforeAll(() => {
    dir = new TempDir(name, options);
  });
  afterAll(() => {
    dir?.remove();
    dir = undefined;
  });
  return {
    get path(): string {
      if (!dir) throw new Error(`suiteDir(${name}) is read outside its suite's run (before beforeAll or after afterAll)`);
      return dir.path;
    },
  };
}
