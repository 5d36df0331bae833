/** os-release(5): shell-style KEY=value lines, values optionally quoted. */

export type OsRelease = Readonly<Record<string, string>>;

function unquote(raw: string): string {
  const v = raw.trim();
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) {
    const inner = v.slice(1, -1);
    return v[0] === '"' ? inner.replace(/\\(["\\$`])/g, '$1') : inner;
  }
  return v;
}

export function parseOsRelease(text: string): OsRelease {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = unquote(m[2]!);
  }
  return out;
}

/** The name a boot menu shows: PRETTY_NAME, else NAME VERSION, else "Linux". */
export function prettyName(os: OsRelease): string {
  return os['PRETTY_NAME'] ?? ([os['NAME'], os['VERSION']].filter(Boolean).join(' ') || 'Linux');
}
