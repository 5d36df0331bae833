import { readFileSync } from 'node:fs';

/** The tool version, read once from package.json next to dist/ or src/. */
export function toolVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version: string };
  return pkg.version;
}
