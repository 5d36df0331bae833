#!/usr/bin/env node
/**
 * `make dist`: the CLI as ONE executable file, dist/bootc, that runs where no Node.js is
 * installed (Node's single executable application: this node binary with the CLI injected).
 *
 * 1. Bundle src/cli.ts and every dependency into ES module chunks (esbuild, split at the
 *    lazy imports); the version is baked in, since no package.json travels with the file.
 * 2. Make the SEA preparation blob: scripts/sea-main.cjs as the entry, each chunk an asset.
 * 3. Copy the running node binary and inject the blob (postject), under a temporary name;
 *    rename into place only once it answers `--version`.
 *
 * Needs only what `npm ci` installs. The result needs glibc and libstdc++ on the machine
 * (every Debian or Fedora based image has both).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(repo, 'dist');
const work = join(out, 'sea');
const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));

/** ink imports react-devtools-core only for DEV=true debugging; it is not a dependency of ours. */
const noDevtools = {
  name: 'no-react-devtools',
  setup(b) {
    b.onResolve({ filter: /^react-devtools-core$/ }, () => ({ path: 'react-devtools-core', namespace: 'bootc-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'bootc-stub' }, () => ({
      contents: 'export default { initialize() {}, connectToDevTools() {} };',
      loader: 'js',
    }));
  },
};

function step(what, fn) {
  const start = Date.now();
  fn();
  process.stderr.write(`dist: ${what} (${((Date.now() - start) / 1000).toFixed(1)} s)\n`);
}

/**
 * yaml resolves to its CommonJS build on node; a split chunk of CommonJS exports only
 * `default`, so `const { parse } = await import('yaml')` would find nothing. Its ES module
 * build is the same code.
 */
const yamlAsEsm = {
  name: 'yaml-as-esm',
  setup(b) {
    b.onResolve({ filter: /^yaml$/ }, () => ({ path: join(repo, 'node_modules/yaml/browser/index.js') }));
  },
};

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const chunks = join(work, 'chunks');
const start = Date.now();
// Split at the CLI's lazy imports, so a verb loads only its own code, as dist/ does; whitespace
// and syntax minified (names kept, for --verbose stacks): V8's compile time is most of the start.
const result = await build({
  entryPoints: { cli: join(repo, 'src/cli.ts') },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: chunks,
  outExtension: { '.js': '.mjs' },
  chunkNames: '[name]-[hash]',
  minifyWhitespace: true,
  minifySyntax: true,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [noDevtools, yamlAsEsm],
  // The bundle runs from a data: URL (scripts/sea-main.cjs): dependencies that resolve files
  // from import.meta.url (yargs) get the executable's own URL instead, and CommonJS ones
  // (react) that require() builtins get a require rooted there too.
  define: { BOOTC_BUNDLED_VERSION: JSON.stringify(version), 'import.meta.url': '__bootcExecutableUrl' },
  banner: {
    js: [
      "import { createRequire as __bootcCreateRequire } from 'node:module';",
      "import { pathToFileURL as __bootcPathToFileURL } from 'node:url';",
      'const __bootcExecutableUrl = __bootcPathToFileURL(process.execPath).href;',
      'const require = __bootcCreateRequire(process.execPath);',
    ].join(' '),
  },
});
process.stderr.write(`dist: bundled the CLI (${((Date.now() - start) / 1000).toFixed(1)} s)\n`);

const blob = join(work, 'sea.blob');
step('made the SEA blob', () => {
  const config = join(work, 'sea-config.json');
  copyFileSync(join(repo, 'scripts/sea-main.cjs'), join(work, 'main.cjs'));
  // Every chunk is an asset under its file name (scripts/sea-main.cjs serves them by it).
  const names = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const assets = Object.fromEntries(names.map((n) => [n, join(chunks, n)]));
  writeFileSync(config, JSON.stringify({ main: join(work, 'main.cjs'), output: blob, disableExperimentalSEAWarning: true, assets }));
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
});

const target = join(out, 'bootc');
const tmp = join(out, '.bootc.tmp');
step('injected it into a copy of node', () => {
  try {
    copyFileSync(process.execPath, tmp);
    chmodSync(tmp, 0o755);
    // postject prints one progress line and warnings about unnamed ELF notes it does not touch.
    execFileSync(process.execPath, [join(repo, 'node_modules/postject/dist/cli.js'), tmp, 'NODE_SEA_BLOB', blob,
      '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: 'ignore' });
    const answer = execFileSync(tmp, ['--version'], { encoding: 'utf8' }).trim();
    if (answer !== version) throw new Error(`dist/bootc answered --version with ${JSON.stringify(answer)}, expected ${version}`);
    renameSync(tmp, target);
  } finally {
    // A failed build leaves the previous dist/bootc, not a half-made one beside it.
    rmSync(tmp, { force: true });
  }
});
process.stderr.write(`dist: ${target} (bootc ${version})\n`);
