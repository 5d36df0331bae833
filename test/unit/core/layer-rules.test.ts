/**
 * The layer rules (.dependency-cruiser.cjs, run by `npm run check`): they pass on src/, and
 * fail on throwaway trees with a cycle (a lazy `await import()` included), an import pointing
 * up the layer order, an import between siblings, and core importing a domain folder.
 */
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { suiteDir, writeTree } from '../../support/temp-tree.js';

const repo = resolve(import.meta.dirname, '../../..');
const config = join(repo, '.dependency-cruiser.cjs');
const depcruise = join(repo, 'node_modules', '.bin', 'depcruise');

const check = (cwd: string) => execa(depcruise, ['src', '--config', config, '--output-type', 'err'], { cwd, reject: false, env: { NO_COLOR: '1' } });

describe('layer rules (dependency-cruiser)', () => {
  const tmp = suiteDir('layer-rules');

  /** A throwaway project: `files` (path below the project → source), with the repo's module settings. */
  const project = (name: string, files: Record<string, string>): string => {
    const all = { 'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }), ...files };
    return writeTree(join(tmp.path, name), all);
  };

  it('passes on src/', async () => {
    const r = await check(repo);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('no dependency violations found');
  }, 60_000);

  it('fails on a cycle hidden behind a lazy import', async () => {
    const r = await check(
      project('lazy-cycle', {
        'src/boot/a.ts': "export async function a(): Promise<number> { const { b } = await import('./b.js'); return b + 1; }\n",
        'src/boot/b.ts': "import { a } from './a.js';\nexport const b = 1;\nexport const c = a;\n",
      }),
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/error no-circular: src\/boot\/a\.ts/);
  }, 60_000);

  it('fails on an import up the layer order, and below cli on cli', async () => {
    const r = await check(
      project('upward', {
        'src/uki/u.ts': "import { b } from '../boot/b.js';\nexport const u = b;\n",
        'src/boot/b.ts': 'export const b = 1;\n',
        'src/oci/registry.ts': "import { v } from '../cli/version.js';\nexport const agent = v;\n",
        'src/cli/version.ts': "export const v = '1';\n",
      }),
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/error layer-uki: src\/uki\/u\.ts → src\/boot\/b\.ts/);
    expect(r.stdout).toMatch(/error layer-oci: src\/oci\/registry\.ts → src\/cli\/version\.ts/);
  }, 60_000);

  it('fails on siblings importing each other, and on core importing a domain folder', async () => {
    const r = await check(
      project('sideways', {
        'src/install/i.ts': "import { u } from '../updates/u.js';\nexport const i = u;\n",
        'src/updates/u.ts': 'export const u = 1;\n',
        'src/core/c.ts': "import { s } from '../store/s.js';\nexport const c = s;\n",
        'src/store/s.ts': 'export const s = 1;\n',
      }),
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/error layer-install: src\/install\/i\.ts → src\/updates\/u\.ts/);
    expect(r.stdout).toMatch(/error layer-core: src\/core\/c\.ts → src\/store\/s\.ts/);
  }, 60_000);
});
