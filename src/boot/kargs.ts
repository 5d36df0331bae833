/**
 * Kernel arguments of a deployment, merged in upstream bootc's order:
 *
 *   1. root kargs          root=UUID=<root fs> rw
 *   2. install-config kargs  ([install] kargs of /usr/lib/bootc/install/*.toml)
 *   3. kargs.d             /usr/lib/bootc/kargs.d/*.toml of the image, files by name
 *   4. deletes             install-config karg-deletes and --karg-delete (`key` or `key=value`)
 *   5. CLI                 --karg, last so it wins
 *
 * then `bootc.deploy=<stateroot>/<id>`, which the addon initrd needs and nothing may delete.
 * `rw` is dropped when any later source says `ro`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { UserError, withContext } from '../core/errors.js';
import { DEPLOY_KARG } from './prepare-root.js';

/** Architecture names as Rust spells them (`std::env::consts::ARCH`), which kargs.d uses. */
export type RustArch = 'x86_64' | 'aarch64' | 'powerpc64' | 's390x' | 'riscv64';

export const KARGS_D_DIR = 'usr/lib/bootc/kargs.d';

export interface KargsDFile {
  /** File name, e.g. `10-console.toml`; orders the files and names them in errors. */
  name: string;
  text: string;
}

export interface KargsDFragment {
  kargs: string[];
  matchArchitectures?: string[];
}

const KARGS_D_KEYS = new Set(['kargs', 'match-architectures']);

function stringArray(value: unknown, file: string, key: string): string[] {
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) {
    throw new UserError(`${file}: \`${key}\` must be an array of strings`, {
      hint: `write it as ${key} = ["…", "…"]`,
    });
  }
  return value;
}

/** One kargs.d file; `name` is only for messages. */
export function parseKargsD(name: string, text: string): KargsDFragment {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`${name} is not valid TOML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, {
      hint: 'fix the syntax; a kargs.d file looks like: kargs = ["console=ttyS0"]',
    });
  }
  for (const key of Object.keys(doc)) {
    if (!KARGS_D_KEYS.has(key)) {
      throw new UserError(`${name}: unknown key \`${key}\``, {
        hint: 'a kargs.d file may only set `kargs` and `match-architectures`',
      });
    }
  }
  if (!('kargs' in doc)) {
    throw new UserError(`${name}: the key \`kargs\` is missing`, { hint: 'add kargs = ["…"]' });
  }
  const kargs = stringArray(doc['kargs'], name, 'kargs');
  for (const karg of kargs) checkKarg(karg, name);
  const fragment: KargsDFragment = { kargs };
  if ('match-architectures' in doc) {
    fragment.matchArchitectures = stringArray(doc['match-architectures'], name, 'match-architectures');
  }
  return fragment;
}

/** The kargs of every kargs.d file that applies to `arch`, files in name order. */
export function kargsFromKargsD(files: readonly KargsDFile[], arch: RustArch): string[] {
  const sorted = [...files].filter((f) => f.name.endsWith('.toml')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return sorted.flatMap((file) => {
    const fragment = parseKargsD(file.name, file.text);
    if (fragment.matchArchitectures && !fragment.matchArchitectures.includes(arch)) return [];
    return fragment.kargs;
  });
}

/** A karg goes on one line of a BLS entry and must be one word of the command line. */
function checkKarg(karg: string, source: string): void {
  if (karg.length === 0 || /[\n\r]/.test(karg) || (/\s/.test(karg) && !/^[^\s"]*"[^"]*"$/.test(karg))) {
    throw new UserError(`${source}: invalid kernel argument ${JSON.stringify(karg)}`, {
      hint: 'one argument per entry; quote a value with spaces as key="a b"',
    });
  }
}

const kargKey = (karg: string): string => (karg.includes('=') ? karg.slice(0, karg.indexOf('=')) : karg);

/** `key` deletes every `key` and `key=…`; `key=value` deletes only that exact argument. */
function applyDeletes(kargs: readonly string[], deletes: readonly string[]): string[] {
  return kargs.filter(
    (karg) => !deletes.some((del) => (del.includes('=') ? karg === del : kargKey(karg) === del)),
  );
}

export interface KernelArgumentsInput {
  /** The root filesystem's UUID, for `root=UUID=…`. */
  rootFsUuid: string;
  stateroot: string;
  deploymentId: string;
  /** Extra root kargs, e.g. `rootflags=subvol=…`, placed after `root=` and `rw`. */
  rootKargs?: readonly string[];
  installConfigKargs?: readonly string[];
  /** Already filtered for the architecture (kargsFromKargsD). */
  kargsD?: readonly string[];
  deletes?: readonly string[];
  /** --karg, in the order given. */
  cli?: readonly string[];
}

/** The merged kernel arguments, in order; join with spaces for a command line. */
export function mergeKernelArguments(input: KernelArgumentsInput): string[] {
  const later = [...(input.installConfigKargs ?? []), ...(input.kargsD ?? [])];
  for (const karg of [...later, ...(input.cli ?? []), ...(input.rootKargs ?? [])]) checkKarg(karg, 'kernel arguments');
  const wantsReadOnly = [...later, ...(input.cli ?? [])].includes('ro');
  const root = [`root=UUID=${input.rootFsUuid}`, ...(wantsReadOnly ? [] : ['rw']), ...(input.rootKargs ?? [])];
  const merged = [...applyDeletes([...root, ...later], input.deletes ?? []), ...(input.cli ?? [])];
  const withoutDeploy = merged.filter((karg) => kargKey(karg) !== DEPLOY_KARG);
  return [...withoutDeploy, `${DEPLOY_KARG}=${input.stateroot}/${input.deploymentId}`];
}

/** Reads `<deployment>/usr/lib/bootc/kargs.d/*.toml`; none when the directory is absent. */
export async function loadKargsD(deploymentDir: string): Promise<KargsDFile[]> {
  const dir = join(deploymentDir, KARGS_D_DIR);
  return withContext(`Reading kernel arguments from ${dir}`, async () => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const tomls = names.filter((n) => n.endsWith('.toml')).sort();
    return Promise.all(tomls.map(async (name) => ({ name: join(KARGS_D_DIR, name), text: await readFile(join(dir, name), 'utf8') })));
  });
}

/** The Rust name of the architecture this process runs on. */
export function hostRustArch(): RustArch {
  switch (process.arch) {
    case 'x64':
      return 'x86_64';
    case 'arm64':
      return 'aarch64';
    case 'ppc64':
      return 'powerpc64';
    case 's390x':
      return 's390x';
    case 'riscv64':
      return 'riscv64';
    default:
      throw new UserError(`unsupported architecture ${process.arch}`, { hint: 'bootc runs on x86_64 and aarch64' });
  }
}
