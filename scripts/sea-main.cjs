// The single executable's entry (Node's SEA runs one CommonJS script). The CLI is carried as
// ES module chunks (one per lazily loaded verb, as in dist/), each an asset of the
// executable: it uses top-level await (yoga-layout under ink), so it cannot be CommonJS. A
// module hook (in its own thread, reading the assets there: passing them over costs more)
// serves the chunks under bootc-sea:/// URLs; they import one another and node: builtins,
// nothing else. (A data: URL per chunk would need no hook, but Node parses such a URL
// several times: 2 s for a 4 MB bundle.)
'use strict';
const { register } = require('node:module');
const vm = require('node:vm');

const BASE = 'bootc-sea:///';
const hooks = `
const BASE = ${JSON.stringify(BASE)};
import { createRequire } from 'node:module';
const { getAsset } = createRequire(process.execPath)('node:sea');
export function resolve(specifier, context, next) {
  if (specifier.startsWith(BASE)) return { url: specifier, shortCircuit: true };
  if (context.parentURL?.startsWith(BASE) && (specifier.startsWith('./') || specifier.startsWith('../'))) {
    return { url: new URL(specifier, context.parentURL).href, shortCircuit: true };
  }
  return next(specifier, context);
}
export function load(url, context, next) {
  if (!url.startsWith(BASE)) return next(url, context);
  return { format: 'module', source: getAsset(url.slice(BASE.length), 'utf8'), shortCircuit: true };
}`;

// Node 20 flags the loader constant as experimental; that one warning would land on every
// command's stderr.
const emitWarning = process.emitWarning;
process.emitWarning = (warning, ...rest) => {
  const text = typeof warning === 'string' ? warning : warning && warning.message;
  if (typeof text === 'string' && text.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
  return emitWarning.call(process, warning, ...rest);
};

register(`data:text/javascript,${encodeURIComponent(hooks)}`);
const load = new vm.Script(`import(${JSON.stringify(`${BASE}cli.mjs`)})`, {
  filename: 'bootc-sea-loader',
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
load.runInThisContext().then(
  () => {
    process.emitWarning = emitWarning;
  },
  (err) => {
    process.stderr.write(`bootc: the executable could not start its CLI: ${err && err.stack ? err.stack : err}\n`);
    process.exit(70);
  },
);
