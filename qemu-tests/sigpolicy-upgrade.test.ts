/**
 * qemu tier: the booted system's signature policy holds `bootc upgrade`. A disk installed
 * from fixture:v1 follows 10.0.2.100:5000/fixture:latest, where fixture:v2 waits unsigned;
 * the guest's /etc/containers/policy.json rejects everything but that repository signed
 * with a sigstore key (registries.d: use-sigstore-attachments). `bootc upgrade` refuses v2
 * and leaves nothing behind (no staged record, deployment, boot entry, cached blob or
 * reboot-required); `switch --enforce-container-sigpolicy` to a scope that takes unsigned
 * images is refused. Once the host attaches a signature for v2's manifest (as
 * `skopeo copy --sign-by-sigstore-private-key` would), the same upgrade stages v2 and the
 * machine boots it. One boot of the guest serves the refusal checks.
 *
 * The fixture images carry the CLI of the day they were built; the guest here must run
 * this tree's, so the installed deployment's /usr/bin/bootc is replaced by `dist/bootc`
 * before the first boot (the image's object in the store stays as it was).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsFile } from '../test/support/tier.js';
import { attachSigstoreSignature, makeSigstoreKeyPair, type SigstoreKeyPair } from '../test/support/signing.js';
import type { Vm } from './harness.js';
import { bootScenario, GUEST_REGISTRY, prepareUpdateScenario, updateScenarioSkipReason, type UpdateScenario } from './update-scenario.js';

const repo = new URL('..', import.meta.url).pathname;
const DIST_CLI = join(repo, 'dist/bootc');

const skip = explainSkip('qemu', updateScenarioSkipReason() ?? needsFile(DIST_CLI, 'run `make dist`: the guest runs this tree\'s CLI'));

const GUEST_IMAGE = `${GUEST_REGISTRY}/fixture:latest`;

/** Put this tree's CLI into the installed deployment, in place of the image's. */
function injectCli(disk: string, work: string): void {
  // The root partition through a loop device of its own (offset and size from the table):
  // partition nodes of a --partscan loop device need udev, which this host may not run.
  const table = JSON.parse(execFileSync('sfdisk', ['--json', disk], { encoding: 'utf8' })) as {
    partitiontable: { sectorsize?: number; partitions: Array<{ start: number; size: number; type: string }> };
  };
  const sector = table.partitiontable.sectorsize ?? 512;
  const esp = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
  const rootPart = table.partitiontable.partitions.find((p) => p.type.toUpperCase() !== esp);
  if (!rootPart) throw new Error(`no root partition in ${disk}`);
  const loop = execFileSync('losetup', ['--find', '--show', '--offset', String(rootPart.start * sector), '--sizelimit', String(rootPart.size * sector), disk], { encoding: 'utf8' }).trim();
  const mnt = mkdtempSync(join(work, 'root-'));
  try {
    execFileSync('mount', [loop, mnt]);
    try {
      const stateroot = join(mnt, 'bootc/deploy/default');
      const ids = readdirSync(stateroot, { withFileTypes: true }).filter((e) => e.isDirectory());
      if (ids.length !== 1) throw new Error(`expected one deployment in ${stateroot}, found ${ids.length}`);
      const target = join(stateroot, ids[0]!.name, 'usr/bin/bootc');
      // A new file, not a write through the hardlink into the object store.
      rmSync(target);
      copyFileSync(DIST_CLI, target);
      execFileSync('chmod', ['0755', target]);
    } finally {
      execFileSync('umount', [mnt]);
    }
  } finally {
    execFileSync('losetup', ['--detach', loop]);
    rmSync(mnt, { recursive: true, force: true });
  }
}

function guestPolicy(): string {
  return JSON.stringify({
    default: [{ type: 'reject' }],
    transports: {
      docker: {
        [`${GUEST_REGISTRY}/fixture`]: [{ type: 'sigstoreSigned', keyPath: '/etc/pki/containers/fleet.pub' }],
        [`${GUEST_REGISTRY}/open`]: [{ type: 'insecureAcceptAnything' }],
      },
    },
  });
}

describe.skipIf(skip)('the booted system\'s signature policy holds bootc upgrade', () => {
  let scenario: UpdateScenario | undefined;
  let vm: Vm | undefined;
  let keys: SigstoreKeyPair;
  let v2Digest: string;
  const guest = (): Vm => {
    if (!vm) throw new Error('the VM did not start');
    return vm;
  };

  beforeAll(async () => {
    scenario = await prepareUpdateScenario({ name: 'sigpolicy-qemu', push: { 'fixture:latest': 'v2' }, follows: 'fixture:latest' });
    injectCli(scenario.disk, scenario.tmp);
    keys = await makeSigstoreKeyPair(join(scenario.tmp, 'keys'), 'fleet');
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${scenario.registry.host}/fixture:latest`]);
    v2Digest = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
    vm = await bootScenario(scenario, 'sigpolicy');
    const g = vm;
    const pem = readFileSync(keys.publicKeyPath).toString('base64');
    await g.runOk('mkdir -p /etc/pki/containers /etc/containers/registries.d');
    await g.runOk(`echo ${pem} | base64 -d > /etc/pki/containers/fleet.pub`);
    await g.runOk(`printf 'docker:\\n  ${GUEST_REGISTRY}:\\n    use-sigstore-attachments: true\\n' > /etc/containers/registries.d/fleet.yaml`);
    await g.runOk(`printf '%s' '${guestPolicy()}' > /etc/containers/policy.json`);
  }, 1_800_000);
  afterAll(async () => {
    await vm?.dispose();
    await scenario?.dispose();
  });

  it('an unsigned v2 is refused with the reason, and nothing is staged, deployed, cached or entered', async () => {
    const g = guest();
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('1');
    const before = await g.runOk('ls /sysroot/bootc/deploy/default; ls /boot/loader/entries; ls /var/cache/bootc/store/blobs/sha256 2>/dev/null | wc -l');
    const r = await g.run('bootc upgrade --quiet', 900_000);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`image ${GUEST_IMAGE.replace(/\./g, '\\.')} \\(${v2Digest}\\) is refused by the signature policy /etc/containers/policy\\.json, transports\\.docker "${GUEST_REGISTRY.replace(/\./g, '\\.')}/fixture", sigstoreSigned: no signature found`),
    );
    expect(await g.runOk('test -e /sysroot/bootc/staged && echo staged || echo none')).toBe('none');
    expect(await g.runOk('test -e /run/reboot-required && echo yes || echo no')).toBe('no');
    expect(await g.runOk('ls /sysroot/bootc/deploy/default; ls /boot/loader/entries; ls /var/cache/bootc/store/blobs/sha256 2>/dev/null | wc -l')).toBe(before);
    const status = JSON.parse(await g.runOk('bootc status --format json')) as { status: { staged: unknown } };
    expect(status.status.staged).toBeNull();
    // `--check` is held to the policy too, and a scope the policy does not name is rejected.
    expect((await g.run('bootc upgrade --check', 300_000)).stdout).toMatch(/sigstoreSigned: no signature found/);
    expect((await g.run(`bootc switch --quiet ${GUEST_REGISTRY}/elsewhere/os:v1`, 300_000)).stdout).toMatch(/default, reject: this scope rejects every image/);
  }, 1_800_000);

  it('switch --enforce-container-sigpolicy refuses a scope that takes unsigned images', async () => {
    const r = await guest().run(`bootc switch --quiet --enforce-container-sigpolicy ${GUEST_REGISTRY}/open/os:v1`, 300_000);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(new RegExp(`--enforce-container-sigpolicy: the signature policy /etc/containers/policy\\.json \\(transports\\.docker "${GUEST_REGISTRY.replace(/\./g, '\\.')}/open"\\) would accept`));
  }, 600_000);

  it('signed by the fleet key, the same v2 is staged and boots', async () => {
    const g = guest();
    await attachSigstoreSignature(scenario!.registry.port, 'fixture', v2Digest, GUEST_IMAGE, keys.privateKey);
    const out = await g.runOk('bootc upgrade --quiet', 900_000);
    expect(out).toContain(`Queued for next boot: ${GUEST_IMAGE}`);
    expect(out).toContain(`Digest: ${v2Digest}`);
    await g.reboot(900_000);
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('2');
    const status = JSON.parse(await g.runOk('bootc status --format json')) as { status: { booted: { image: { imageDigest: string } } } };
    expect(status.status.booted.image.imageDigest).toBe(v2Digest);
  }, 1_800_000);
});
