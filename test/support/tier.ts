/**
 * Tier guards for tests that need root, loop devices, qemu or the built fixtures.
 * A guard returns null when the tier can run, or the reason it cannot; the caller passes
 * that to `describe.skipIf` and the reason is printed once, so a skip never goes unexplained.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const printed = new Set<string>();

/** Print a skip reason once per process, on stderr where vitest shows it. */
export function explainSkip(tier: string, reason: string | null): boolean {
  if (reason === null) return false;
  const line = `SKIP [${tier}]: ${reason}`;
  if (!printed.has(line)) {
    printed.add(line);
    process.stderr.write(line + '\n');
  }
  return true;
}

export function needsRoot(): string | null {
  return process.getuid?.() === 0 ? null : 'needs root (run `make test` as root)';
}

export function needsLoopDevices(): string | null {
  const root = needsRoot();
  if (root) return root;
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control: this kernel has no loop devices';
  try {
    execFileSync('losetup', ['-f'], { stdio: 'pipe' });
  } catch {
    return '`losetup -f` found no free loop device';
  }
  return null;
}

export function needsCommands(...names: string[]): string | null {
  for (const name of names) {
    try {
      execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'pipe' });
    } catch {
      return `\`${name}\` is not installed (run \`make deps\`)`;
    }
  }
  return null;
}

export function needsFile(path: string, hint: string): string | null {
  try {
    accessSync(path, constants.R_OK);
    return null;
  } catch {
    return `${path} is missing (${hint})`;
  }
}

/** An image in podman's storage that a make target builds (`make tool-image`, `make base-image`). */
export function needsImage(image: string, makeTarget: string): string | null {
  try {
    execFileSync('podman', ['image', 'exists', image], { stdio: 'pipe' });
    return null;
  } catch {
    return `${image} is missing (run \`make ${makeTarget}\`)`;
  }
}
