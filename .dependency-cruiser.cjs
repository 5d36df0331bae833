/**
 * The layer rules of DESIGN.md, checked by `npm run check` (dependency-cruiser).
 *
 * Bottom up; an import may only point down, never sideways within a level, and never in a
 * cycle (lazy `await import()` included):
 *
 *   core → oci, store → uki → boot → deploy, container → disk → install, build-disk, updates → tui → cli
 *
 * build-disk is a target built from install's pieces (the install config, image facts,
 * os-config), so install sits one level below it and updates; that updates never imports
 * install (nor install updates: they meet in deploy) is a rule of its own.
 */
'use strict';

/** Each level: its folders, as path patterns below src/. */
const LEVELS = [
  { core: '^src/core/' },
  { oci: '^src/oci/', store: '^src/store/' },
  { uki: '^src/uki/' },
  { boot: '^src/boot/' },
  { deploy: '^src/deploy/', container: '^src/container/' },
  { disk: '^src/disk/' },
  { install: '^src/install/' },
  { 'build-disk': '^src/build-disk/', updates: '^src/updates/' },
  { tui: '^src/tui/' },
  { cli: '^src/(cli/|cli\\.ts$)' },
];

const layerRules = LEVELS.flatMap((level, i) =>
  Object.entries(level).flatMap(([name, path]) => {
    const above = LEVELS.slice(i + 1).flatMap((l) => Object.values(l));
    const siblings = Object.entries(level)
      .filter(([other]) => other !== name)
      .map(([, p]) => p);
    if (above.length + siblings.length === 0) return []; // the top: it may import anything
    return {
      name: `layer-${name}`,
      comment: `${name} may import only what is below it in DESIGN.md's layer order (not ${[...LEVELS.slice(i + 1).flatMap((l) => Object.keys(l)), ...Object.keys(level).filter((o) => o !== name)].join(', ')})`,
      severity: 'error',
      from: { path },
      to: { path: [...above, ...siblings] },
    };
  }),
);

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'no import cycle, lazy imports included: move what the modules share to where it belongs',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'updates-not-install',
      comment: 'install and updates share deploy/ and never import each other',
      severity: 'error',
      from: { path: '^src/updates/' },
      to: { path: '^src/install/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a cycle of types is still a cycle of concepts.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
