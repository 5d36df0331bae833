/**
 * Diagnostic logging on stderr. Quiet by default; `--verbose` (or BOOTC_DEBUG=1) shows
 * debug lines such as every command we run.
 */
let verbose = process.env.BOOTC_DEBUG === '1';

export function setVerbose(on: boolean): void {
  verbose = on;
}

export function isVerbose(): boolean {
  return verbose;
}

export function debug(message: string): void {
  if (verbose) process.stderr.write(`debug: ${message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

export function info(message: string): void {
  process.stderr.write(`${message}\n`);
}
