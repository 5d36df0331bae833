/**
 * bench/upgrade: fixture:v1 → fixture:v2 on an installed sysroot (a directory sysroot and
 * ESP, as test/privileged/updates uses), the update coming from a local docker-registry. Prints
 * one JSON document; asserts nothing.
 *
 *   npx tsx bench/upgrade.ts [--runs 3] [--no-build]     (as root)
 *
 * Per run: a fresh sysroot with v1 deployed (not timed), then `upgrade()` from the built
 * dist/ into an empty blob cache, timed to "staged". Reported:
 *   - bytes fetched: every blob that reached the cache (manifest, config, layers), against
 *     the changed layers plus manifest and config (target: ratio <= 1.01);
 *   - seconds to staged (median);
 *   - `bootc status` wall time, the built CLI as a user runs it, on the staged sysroot:
 *     /sysroot, /boot and /proc/cmdline are bind-mounted from the bench's sysroot in a
 *     private mount namespace (target: median under 300 ms); the same for the
 *     not-deployed answer on this host, and `node -e 0` for Node's own start-up.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { run } from '../src/core/exec.js';
import { ociLayoutDir, ociLayoutRef } from '../fixtures/paths.js';
import { pushToRegistry, startRegistry } from '../test/support/registry.js';
import { REPO, median, round, settle } from './support.js';

/** The built module (as `bootc` runs it), typed by its source. */
const dist = async <T>(path: string): Promise<T> => (await import(pathToFileURL(join(REPO, 'dist', path)).href)) as T;

interface Manifest {
  config: { digest: string; size: number };
  layers: Array<{ digest: string; size: number }>;
}

async function layoutManifest(tag: string): Promise<{ manifest: Manifest; manifestSize: number }> {
  const index = JSON.parse(await readFile(join(ociLayoutDir, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; size: number; annotations?: Record<string, string> }>;
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`fixture tag ${tag} is not in ${ociLayoutDir}`);
  const manifest = JSON.parse(await readFile(join(ociLayoutDir, 'blobs/sha256', entry.digest.slice(7)), 'utf8')) as Manifest;
  return { manifest, manifestSize: entry.size };
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) total += (await stat(join(dir, name))).size;
  return total;
}

/** Wall seconds of `argv` run `times` times inside one private mount namespace with `binds`. */
async function timeInNamespace(binds: Array<[string, string]>, argv: string[], times: number): Promise<number[]> {
  const mounts = binds.map(([from, to]) => `mount --bind '${from}' '${to}'`).join(' && ');
  const loop = `for i in $(seq ${times}); do s=$(date +%s%N); ${argv.join(' ')} >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 )); done`;
  const script = `set -e; mount --make-rprivate /; ${mounts ? mounts + ' && ' : ''}${loop}`;
  const r = await run({ description: 'Timing bootc status', argv: ['unshare', '-m', 'sh', '-c', script] });
  return r.stdout.trim().split('\n').map((us) => Number(us) / 1e6);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const runs = Number(args[args.indexOf('--runs') + 1] || 3) || 3;
  if (!args.includes('--no-build')) await run({ description: 'Building the CLI', argv: ['npm', 'run', 'build'], cwd: REPO });
  const { pullImage } = await dist<typeof import('../src/oci/pull.js')>('oci/pull.js');
  const { parseReference } = await dist<typeof import('../src/oci/reference.js')>('oci/reference.js');
  const { createDeployment, importImage } = await dist<typeof import('../src/deploy/deploy.js')>('deploy/deploy.js');
  const { renderBlsEntry } = await dist<typeof import('../src/boot/bls.js')>('boot/bls.js');
  const { upgrade } = await dist<typeof import('../src/updates/upgrade.js')>('updates/upgrade.js');

  const v1 = await layoutManifest('v1');
  const v2 = await layoutManifest('v2');
  const v1Layers = new Set(v1.manifest.layers.map((l) => l.digest));
  const changed = v2.manifest.layers.filter((l) => !v1Layers.has(l.digest));
  const needed = changed.reduce((n, l) => n + l.size, 0) + v2.manifest.config.size + v2.manifestSize;

  const registry = await startRegistry();
  const work = await mkdtemp('/var/tmp/bootc-bench-upgrade-');
  // The bind targets of the status measurement; made here, removed at the end, only if absent.
  const madeSysroot = !(await stat('/sysroot').catch(() => null));
  try {
    await pushToRegistry(registry, ociLayoutRef('v2'), 'fixture:latest');
    const follows = { image: `${registry.host}/fixture:latest`, transport: 'registry' };
    const stagedSeconds: number[] = [];
    const fetched: number[] = [];
    let last: { sysroot: string; boot: string; cmdline: string } | null = null;
    for (let i = 0; i < runs; i++) {
      const dir = join(work, `run-${i}`);
      const loc = { sysroot: join(dir, 'sysroot'), boot: join(dir, 'boot'), cmdlinePath: join(dir, 'cmdline') };
      await mkdir(loc.sysroot, { recursive: true });
      await mkdir(join(loc.boot, 'loader/entries'), { recursive: true });
      const pulled = await pullImage(parseReference(ociLayoutRef('v1')), { cacheDir: join(dir, 'install-cache') });
      const deployed = await createDeployment(loc.sysroot, await importImage(loc.sysroot, pulled), 'fixture:v1', {
        stateroot: 'default',
        targetImage: follows,
        kargs: [],
        architecture: 'amd64',
      });
      await writeFile(
        join(loc.boot, 'loader/entries', `bootc-default-${deployed.id}.conf`),
        renderBlsEntry({ title: 'v1', version: '1', sortKey: 'bootc', linux: '/l', initrd: '/i', options: 'o' }),
      );
      await writeFile(loc.cmdlinePath, `root=UUID=1234 rw bootc.deploy=default/${deployed.id}\n`);
      await settle();
      const cache = join(dir, 'cache');
      const started = process.hrtime.bigint();
      const outcome = await upgrade({ storeDir: cache, locations: loc, rebootRequiredPath: join(dir, 'reboot-required') });
      stagedSeconds.push(Number(process.hrtime.bigint() - started) / 1e9);
      if (outcome.kind !== 'staged') throw new Error(`upgrade did not stage v2: ${outcome.kind}`);
      fetched.push(await dirBytes(join(cache, 'blobs/sha256')));
      last = { sysroot: loc.sysroot, boot: loc.boot, cmdline: loc.cmdlinePath };
    }

    if (madeSysroot) await mkdir('/sysroot');
    const cli = ['node', join(REPO, 'dist/cli.js'), 'status'];
    const statusRuns = 7;
    const deployed = await timeInNamespace(
      [[last!.sysroot, '/sysroot'], [last!.boot, '/boot'], [last!.cmdline, '/proc/cmdline']],
      [...cli, '--format', 'json'],
      statusRuns,
    );
    const human = await timeInNamespace([[last!.sysroot, '/sysroot'], [last!.boot, '/boot'], [last!.cmdline, '/proc/cmdline']], cli, statusRuns);
    const foreign = await timeInNamespace([], cli, statusRuns);
    const nodeOnly = await timeInNamespace([], ['node', '-e', '0'], statusRuns);
    const bytesFetched = median(fetched);
    process.stdout.write(
      JSON.stringify(
        {
          bench: 'upgrade',
          image: 'fixture:v1 -> fixture:v2 (local docker-registry)',
          runs,
          changedLayers: changed.length,
          bytesNeeded: needed,
          bytesFetched,
          bytesRatio: round(bytesFetched / needed),
          bytesTarget: 1.01,
          secondsToStaged: round(median(stagedSeconds)),
          secondsToStagedRuns: stagedSeconds.map(round),
          statusSeconds: { deployedJson: round(median(deployed)), deployedHuman: round(median(human)), notDeployed: round(median(foreign)), nodeStartup: round(median(nodeOnly)) },
          statusTargetSeconds: 0.3,
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    if (madeSysroot) await rmdir('/sysroot').catch(() => undefined);
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
