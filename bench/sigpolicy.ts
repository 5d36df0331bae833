/**
 * bench/sigpolicy: what the signature policy costs a pull. fixture:v2 is pushed to a local
 * docker-registry, signed with a GPG key by `skopeo copy --sign-by` (lookaside served over
 * HTTP from 127.0.0.1) and given a sigstore attachment; each round pulls it into an empty
 * cache three ways, in rotating order: without a policy, under a policy requiring the GPG
 * signature, under one requiring the sigstore signature. Prints JSON: median whole-process
 * seconds of each, the median ratios signed/unsigned (target ≤ 1.05), the in-process pull
 * seconds and the policy check's own seconds (the steadier figure when other work shares
 * the machine). No assertions.
 *
 * The pull runs from one bundled CommonJS script, as in the shipped dist/bootc (whose code
 * cache makes start-up cheaper still), not from tsc's many-file output, where every lazily
 * imported module is a separate file to resolve and compile.
 *
 *   npx tsx bench/sigpolicy.ts [runs=7]
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { run } from '../src/core/exec.js';
import { ociLayoutRef } from '../fixtures/paths.js';
import { startRegistry } from '../test/support/registry.js';
import { attachSigstoreSignature, makeGpgSigner, makeSigstoreKeyPair, serveDirectory } from '../test/support/signing.js';
import { median, round, settle } from './support.js';

type Mode = 'none' | 'gpg' | 'sigstore';
const MODES: readonly Mode[] = ['none', 'gpg', 'sigstore'];

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 7);
  const work = await mkdtemp('/var/tmp/bootc-bench-sigpolicy-');
  const registry = await startRegistry();
  const staging = join(work, 'lookaside');
  await mkdir(staging, { recursive: true });
  const lookaside = await serveDirectory(staging);
  const signer = await makeGpgSigner('bench');
  try {
    const host = registry.host;
    const registriesD = join(work, 'registries.d');
    await mkdir(registriesD, { recursive: true });
    await writeFile(
      join(registriesD, 'bench.yaml'),
      `docker:\n  ${host}:\n    lookaside: ${lookaside.url}\n    lookaside-staging: file://${staging}\n    use-sigstore-attachments: true\n`,
    );
    await run({
      description: 'Pushing and signing fixture:v2',
      argv: ['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', '--registries.d', registriesD, '--sign-by', signer.fingerprint, ociLayoutRef('v2'), `docker://${host}/fixture:v2`],
      env: signer.env,
    });
    const inspect = await run({ description: 'Reading the pushed digest', argv: ['skopeo', 'inspect', '--tls-verify=false', '--raw', `docker://${host}/fixture:v2`] });
    const digest = `sha256:${createHash('sha256').update(inspect.stdout).digest('hex')}`;
    const architecture = (JSON.parse((await run({ description: 'Reading the architecture', argv: ['skopeo', 'inspect', '--tls-verify=false', `docker://${host}/fixture:v2`] })).stdout) as { Architecture: string }).Architecture;
    const keys = await makeSigstoreKeyPair(join(work, 'keys'), 'bench');
    await attachSigstoreSignature(registry.port, 'fixture', digest, `${host}/fixture:v2`, keys.privateKey);
    const policies: Record<Exclude<Mode, 'none'>, string> = { gpg: join(work, 'gpg.json'), sigstore: join(work, 'sigstore.json') };
    await writeFile(policies.gpg, JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [`${host}/fixture`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: signer.publicKeyPath }] } } }));
    await writeFile(policies.sigstore, JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [`${host}/fixture`]: [{ type: 'sigstoreSigned', keyPath: keys.publicKeyPath }] } } }));

    const child = join(work, 'sigpolicy-child.cjs');
    await build({
      entryPoints: [new URL('./sigpolicy-child.ts', import.meta.url).pathname],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile: child,
      minifyWhitespace: true,
      minifySyntax: true,
      logLevel: 'warning',
      define: { BOOTC_BUNDLED_VERSION: JSON.stringify('bench'), 'import.meta.url': '__benchScriptUrl' },
      banner: { js: "const __benchScriptUrl = require('node:url').pathToFileURL(__filename).href;" },
    });
    const results: Record<Mode, Array<{ seconds: number; inner: number; check: number }>> = { none: [], gpg: [], sigstore: [] };
    for (let i = 0; i < runs; i++) {
      // Rotate who goes first so page-cache and registry warm-up favour none of them.
      const order = MODES.map((_, k) => MODES[(i + k) % MODES.length]!);
      for (const mode of order) {
        const dir = join(work, `cache-${mode}-${i}`);
        await settle();
        const started = process.hrtime.bigint();
        const r = await run({
          description: `Pulling (${mode})`,
          argv: [process.execPath, child, `${host}/fixture:v2`, dir, architecture, mode, mode === 'none' ? '' : policies[mode], registriesD],
        });
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const inner = JSON.parse(r.stdout) as { seconds: number; checkSeconds: number; signatures: string[] };
        if (mode !== 'none' && inner.signatures.length !== 1) throw new Error(`the ${mode} pull accepted no signature: ${r.stdout}`);
        results[mode].push({ seconds, inner: inner.seconds, check: inner.checkSeconds });
        await rm(dir, { recursive: true, force: true });
      }
    }
    const med = (mode: Mode, f: (r: { seconds: number; inner: number; check: number }) => number): number => round(median(results[mode].map(f)));
    const ratio = (mode: Mode): number => round(median(results[mode].map((r, i) => r.seconds / results.none[i]!.seconds)));
    process.stdout.write(
      JSON.stringify(
        {
          image: 'fixture:v2',
          runs,
          noPolicyMedianSeconds: med('none', (r) => r.seconds),
          gpgMedianSeconds: med('gpg', (r) => r.seconds),
          sigstoreMedianSeconds: med('sigstore', (r) => r.seconds),
          medianRatioGpgToNoPolicy: ratio('gpg'),
          medianRatioSigstoreToNoPolicy: ratio('sigstore'),
          inProcessPullMedianSeconds: { none: med('none', (r) => r.inner), gpg: med('gpg', (r) => r.inner), sigstore: med('sigstore', (r) => r.inner) },
          policyCheckMedianSeconds: { none: med('none', (r) => r.check), gpg: med('gpg', (r) => r.check), sigstore: med('sigstore', (r) => r.check) },
          // What the check adds to the unsigned pull's in-process time: robust to load that swings whole runs.
          checkShareOfUnsignedPull: { gpg: round(med('gpg', (r) => r.check) / med('none', (r) => r.inner)), sigstore: round(med('sigstore', (r) => r.check) / med('none', (r) => r.inner)) },
          target: 'ratio <= 1.05',
          note: 'whole processes of one bundled script, as dist/bootc is, start-up included; each pull into an empty cache',
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    await lookaside.stop();
    await registry.stop();
    await signer.dispose();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
