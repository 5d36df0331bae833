/**
 * bootc-image-builder's build configuration (`config.toml` or `config.json`), the subset a
 * disk image build honours: `[[customizations.user]]` (name, password, key, groups),
 * `[customizations.kernel] append`, and `[[customizations.filesystem]]` (mountpoint,
 * minsize). Anything else bib knows but we do not implement is refused by name rather than
 * silently ignored, so a user never ships an image missing a customisation they asked for.
 */
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { UserError } from '../core/errors.js';

const userSchema = z
  .object({
    name: z.string().regex(/^[a-z_][a-z0-9_-]*\$?$/, 'a user name is lower-case letters, digits, "-" and "_"'),
    password: z.string().optional(),
    key: z.string().optional(),
    groups: z.array(z.string()).optional(),
    home: z.string().optional(),
    shell: z.string().optional(),
    uid: z.number().int().nonnegative().optional(),
    gid: z.number().int().nonnegative().optional(),
  })
  .strict();

const filesystemSchema = z
  .object({
    mountpoint: z.string(),
    minsize: z.union([z.number().int().positive(), z.string()]),
  })
  .strict();

const customizationsSchema = z
  .object({
    user: z.array(userSchema).optional(),
    kernel: z.object({ append: z.string().optional() }).strict().optional(),
    filesystem: z.array(filesystemSchema).optional(),
  })
  .strict();

const configSchema = z.object({ customizations: customizationsSchema.optional() }).strict();

export type BuildUser = z.infer<typeof userSchema>;

export interface BuildConfig {
  users: BuildUser[];
  /** Extra kernel arguments, split on whitespace. */
  kernelAppend: string[];
  /** Minimum size of the root filesystem in bytes (from the `/` filesystem customisation). */
  rootMinSize: number | undefined;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * Parse a size the way blueprints write it: a byte count, or "20 GiB", "512MiB", "10GB";
 * the single letters K/M/G/T are binary units, as sfdisk and truncate read them.
 */
export function parseSize(value: number | string, what: string): number {
  if (typeof value === 'number') return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UserError(`${what}: cannot read the size "${value}"`, {
      hint: 'write a byte count or a number with a unit, e.g. "20 GiB", "512 MiB", "10 GB"',
    });
  }
  return Math.ceil(Number(m[1]) * unit);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (path ? `${path}.${k}` : k));
    return `unsupported key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')}`;
  }
  return `${path || '(top level)'}: ${issue.message}`;
}

/** Validate an already-parsed document (TOML or JSON) coming from `source`. */
export function buildConfigFromDocument(doc: unknown, source: string): BuildConfig {
  const parsed = configSchema.safeParse(doc);
  if (!parsed.success) {
    throw new UserError(`${source}: ${parsed.error.issues.map(describeIssue).join('; ')}`, {
      hint: 'supported: [[customizations.user]] (name, password, key, groups), [customizations.kernel] append, [[customizations.filesystem]] mountpoint = "/" with minsize',
    });
  }
  const c = parsed.data.customizations ?? {};
  let rootMinSize: number | undefined;
  for (const fs of c.filesystem ?? []) {
    if (fs.mountpoint !== '/') {
      throw new UserError(`${source}: filesystem customisation for "${fs.mountpoint}" is not supported`, {
        hint: 'this tool builds one root filesystem; only mountpoint = "/" with minsize is honoured',
      });
    }
    rootMinSize = parseSize(fs.minsize, `${source}: minsize of "/"`);
  }
  const names = new Set<string>();
  for (const u of c.user ?? []) {
    if (names.has(u.name)) throw new UserError(`${source}: user "${u.name}" is listed twice`);
    names.add(u.name);
  }
  return {
    users: c.user ?? [],
    kernelAppend: (c.kernel?.append ?? '').split(/\s+/).filter((a) => a !== ''),
    rootMinSize,
  };
}

/** Parse config text; `.json` files (and stdin) as JSON, everything else as TOML (as bib does). */
export function parseBuildConfig(text: string, source: string, format: 'json' | 'toml' = source.endsWith('.json') ? 'json' : 'toml'): BuildConfig {
  let doc: unknown;
  try {
    doc = format === 'json' ? JSON.parse(text) : parseToml(text);
  } catch (err) {
    throw new UserError(`${source}: not valid ${format === 'json' ? 'JSON' : 'TOML'}: ${(err as Error).message}`, {
      hint: 'check the file syntax; bootc-image-builder config is TOML (config.toml) or JSON (config.json)',
    });
  }
  return buildConfigFromDocument(doc, source);
}
