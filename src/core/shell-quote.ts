/** Quote argv so the printed command line can be pasted into a POSIX shell and rerun. */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function quoteArg(arg: string): string {
  if (arg === '') return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function commandLine(argv: readonly string[], env: Readonly<Record<string, string>> = {}): string {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${quoteArg(v)}`);
  return [...assignments, ...argv.map(quoteArg)].join(' ');
}
