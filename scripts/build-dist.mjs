#!/usr/bin/env node
/**
 * `make dist`: the CLI as ONE executable file, dist/bootc, that runs where no Node.js is
 * installed (Node's single executable application: this node binary with the CLI injected).
 *
 * 1. Bundle src/cli.ts and every dependency into one CommonJS script (esbuild); the version
 *    is baked in, since no package.json travels with the file.
 * 2. Make the SEA preparation blob: that script as the entry, with V8's code cache of it.
 * 3. Copy the running node binary and inject the blob (postject), under a temporary name;
 *    rename into place only once it answers `--version`, and nothing on stderr.
 *
 * Why one CommonJS script: Node 20 runs a SEA's entry as CommonJS. ES modules would need a
 * module hook serving them from the executable's assets, and that hook runs in a thread of
 * its own: 35 ms of start-up on every command (bench/status.ts, 2026-12-05: ratio 1.14
 * against `node dist/cli.js`). As one script the entry can carry its code cache
 * (`useCodeCache`): V8 then compiles next to nothing at start-up.
 *
 * Needs only what `npm ci` installs. The result needs glibc and libstdc++ on the machine
 * (every Debian or Fedora based image has both).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(repo, 'dist');
const work = join(out, 'sea');
const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));

function step(what, fn) {
  const start = Date.now();
  fn();
  process.stderr.write(`dist: ${what} (${((Date.now() - start) / 1000).toFixed(1)} s)\n`);
}

/** `source` with each [from, to] replaced, where every `from` must occur exactly once. */
function patchOnce(source, file, replacements) {
  for (const [from, to] of replacements) {
    const at = source.indexOf(from);
    if (at < 0 || source.indexOf(from, at + 1) >= 0) {
      throw new Error(`build-dist: expected ${JSON.stringify(from)} once in ${file}; did the dependency change? Update the patch in scripts/build-dist.mjs`);
    }
    source = source.slice(0, at) + to + source.slice(at + from.length);
  }
  return source;
}

/**
 * yoga-layout (ink's layout engine) instantiates its WebAssembly with a top-level await,
 * which a CommonJS script cannot hold. Its Emscripten loader takes an `instantiateWasm`
 * hook: given the module's bytes, the instance is made synchronously and the loader
 * finishes before it returns, so the module can export Yoga as it did. The bytes are the
 * base64 the loader carries (read here, at build time; the loader itself is untouched).
 */
const yogaWithoutTopLevelAwait = {
  name: 'yoga-without-top-level-await',
  setup(b) {
    b.onLoad({ filter: /[\\/]yoga-layout[\\/]dist[\\/]src[\\/]index\.js$/ }, (args) => {
      const loaderFile = join(dirname(args.path), '../binaries/yoga-wasm-base64-esm.js');
      const dataUrls = [...readFileSync(loaderFile, 'utf8').matchAll(/"data:application\/octet-stream;base64,([A-Za-z0-9+/=]+)"/g)];
      if (dataUrls.length !== 1) throw new Error(`build-dist: expected one base64 WebAssembly module in ${loaderFile}, found ${dataUrls.length}`);
      // The module this replaces: the build stops if yoga's own changed.
      patchOnce(readFileSync(args.path, 'utf8'), args.path, [['const Yoga = wrapAssembly(await loadYoga());', '']]);
      return {
        loader: 'js',
        resolveDir: dirname(args.path),
        contents: [
          "import loadYoga from '../binaries/yoga-wasm-base64-esm.js';",
          "import wrapAssembly from './wrapAssembly.js';",
          `const wasm = new WebAssembly.Module(Buffer.from(${JSON.stringify(dataUrls[0][1])}, 'base64'));`,
          'const yogaModule = {',
          '  instantiateWasm(imports, receiveInstance) {',
          '    receiveInstance(new WebAssembly.Instance(wasm, imports));',
          '    return {};',
          '  },',
          '};',
          // Initialises yogaModule in place before returning; the promise it also returns is that same object.
          'loadYoga(yogaModule);',
          'export default wrapAssembly(yogaModule);',
          "export * from './generated/YGEnums.js';",
        ].join('\n'),
      };
    });
  },
};

/**
 * ink's reconciler awaits at top level only when DEV=true, to attach React devtools (not a
 * dependency of ours) and read its package.json (not in the executable): the executable
 * does neither, so react-devtools-core stays out of the bundle too.
 */
const inkWithoutTopLevelAwait = {
  name: 'ink-without-top-level-await',
  setup(b) {
    b.onLoad({ filter: /[\\/]ink[\\/]build[\\/]reconciler\.js$/ }, (args) => ({
      loader: 'js',
      contents: patchOnce(readFileSync(args.path, 'utf8'), args.path, [
        ["await import('./devtools.js');", ''],
        ['? await loadPackageJson()', '? { name: undefined, version: undefined }'],
      ]),
    }));
  },
};

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const bundle = join(work, 'bootc.cjs');
const start = Date.now();
// The CLI's lazy imports stay lazy: a verb's modules run only when it does. Whitespace and
// syntax minified (names kept, for --verbose stacks).
await build({
  entryPoints: [join(repo, 'src/cli.ts')],
  // The bundle names each module by its path from here, wherever the build is started.
  absWorkingDir: repo,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: bundle,
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [yogaWithoutTopLevelAwait, inkWithoutTopLevelAwait],
  // Dependencies that resolve files from import.meta.url (yargs) get the executable's own URL.
  define: { BOOTC_BUNDLED_VERSION: JSON.stringify(version), 'import.meta.url': '__bootcExecutableUrl' },
  banner: { js: "const __bootcExecutableUrl = require('node:url').pathToFileURL(process.execPath).href;" },
});
process.stderr.write(`dist: bundled the CLI (${((Date.now() - start) / 1000).toFixed(1)} s)\n`);

const blob = join(work, 'sea.blob');
step('made the SEA blob', () => {
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify({
    // Relative to `work`: the blob records this path, and the checkout's place is no input.
    main: 'bootc.cjs',
    output: 'sea.blob',
    disableExperimentalSEAWarning: true,
    useCodeCache: true,
  }));
  // V8 lays out its code cache by a hash seed drawn at random per process: two builds
  // differed in 524 kB of its 605. --predictable fixes the seed (and keeps V8 to one
  // thread), and is not among the flags a cache must match to be accepted (the check
  // below would see a rejected one).
  execFileSync(process.execPath, ['--predictable', '--experimental-sea-config', 'sea-config.json'], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
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
    // A code cache V8 rejects costs the whole compile again and prints a warning on every run.
    const answer = spawnSync(tmp, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (answer.status !== 0 || answer.stdout.trim() !== version || answer.stderr !== '') {
      throw new Error(`dist/bootc --version: exit ${answer.status}, stdout ${JSON.stringify(answer.stdout)} (expected ${version}), stderr ${JSON.stringify(answer.stderr)} (expected none)`);
    }
    renameSync(tmp, target);
  } finally {
    // A failed build leaves the previous dist/bootc, not a half-made one beside it.
    rmSync(tmp, { force: true });
  }
});
process.stderr.write(`dist: ${target} (bootc ${version})\n`);
