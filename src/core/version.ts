import { readFileSync } from 'node:fs';

/** Set by the bundler for the single executable (scripts/build-dist.mjs), which has no package.json beside it. */
declare const BOOTC_BUNDLED_VERSION: string | undefined;

/** The tool version: baked into the single executable, else read from package.json next to dist/ or src/. */
export function toolVersion(): string {
  if (typeof BOOTC_BUNDLED_VERSION === 'string') return BOOTC_BUNDLED_VERSION;
  const url = new URL('../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version: string };
  return pkg.version;
}
