/**
 * qemu tier: a disk installed with fixture:v1 (following 10.0.2.100:5000/fixture:latest)
 * boots; fixture:v2 is pushed as :latest and :v2 to a registry on the host, reached by the
 * guest only through the restricted guestfwd. In the guest: `bootc update --check` sees v2
 * at :latest, `bootc upgrade --tag v2` stages it and follows :v2 from then on; the shutdown
 * finalises it (the finalize unit runs only because something is staged, and the shutdown
 * is timed); at reboot the /etc merge made v2 the default, so release is 2, a user's /etc
 * change and a /var file survive and the image's changed /etc default arrives; then
 * `bootc rollback` and a reboot (nothing staged: bootc does not run at shutdown, timed) bring
 * release 1 back, and a second rollback v2. Then
 * `bootc switch` to fixture:v3, which never reaches boot-complete.target: the boot loader
 * tries it three times, then boots v2 again by itself, and `bootc status` says so. Last,
 * `bootc usr-overlay` makes /usr writable until the next boot.
 *
 * The disk is hybrid (install to-disk's default on x86_64). `make test` boots it under
 * SeaBIOS, so GRUB reads the menu each finalisation and rollback regenerated and counts v3's
 * tries in grubenv; `make soak` (BOOTC_TEST_FIRMWARE=uefi) runs it under OVMF, where
 * systemd-boot counts them in the entry's file name.
 *
 * Every pull above is held to the booted system's signature policy: the guest's
 * /etc/containers/policy.json rejects everything but 10.0.2.100:5000/fixture signed with
 * the fleet's sigstore key (registries.d: use-sigstore-attachments). First, while v2 is
 * unsigned, `bootc upgrade` refuses it and leaves nothing behind (no staged record,
 * deployment, boot entry, cached blob or reboot-required), and `switch
 * --enforce-container-sigpolicy` to a scope that takes unsigned images is refused; then the
 * host attaches a signature for v2's manifest (as `skopeo copy
 * --sign-by-sigstore-private-key` would) and the upgrade above goes through. v3 is signed
 * from the start.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsFile } from '../test/support/tier.js';
import { attachSigstoreSignature, makeSigstoreKeyPair, type SigstoreKeyPair } from '../test/support/signing.js';
import { v1RootfsDir } from '../fixtures/paths.js';
import type { Vm } from './harness.js';
import { FINALIZE_ON_CONSOLE, timedReboot } from './shutdown.js';
import { bootScenario, GUEST_REGISTRY, prepareUpdateScenario, testFirmware, updateScenarioSkipReason, type UpdateScenario } from './update-scenario.js';

const skip = explainSkip(
  'qemu',
  updateScenarioSkipReason() ??
    // The image carries the CLI as it was when the fixtures were built.
    needsFile(join(v1RootfsDir, 'usr/bin/bootc'), 'the fixture image has no tool layer: rebuild the fixtures (`make fixtures`)') ??
    needsFile(join(v1RootfsDir, 'usr/lib/systemd/system/bootc-finalize-staged.service'), 'the fixture image lacks bootc-finalize-staged.service: rebuild the fixtures (`make fixtures`)'),
);

const GUEST_IMAGE = `${GUEST_REGISTRY}/fixture:latest`;
/** SeaBIOS and GRUB in `make test`; `make soak` runs the same scenario under OVMF and systemd-boot. */
const FIRMWARE = testFirmware('bios');
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The fleet's policy: fixture images signed with its key, `open/` unsigned, nothing else. */
function guestPolicy(): string {
  return JSON.stringify({
    default: [{ type: 'reject' }],
    transports: {
      docker: {
        [`${GUEST_REGISTRY}/fixture`]: [{ type: 'sigstoreSigned', keyPath: '/etc/pki/containers/fleet.pub', signedIdentity: { type: 'matchRepository' } }],
        [`${GUEST_REGISTRY}/open`]: [{ type: 'insecureAcceptAnything' }],
      },
    },
  });
}

describe.skipIf(skip)(`bootc upgrade and rollback in the booted guest (${FIRMWARE === 'bios' ? 'SeaBIOS, GRUB' : 'OVMF, systemd-boot'})`, () => {
  let scenario: UpdateScenario | undefined;
  let vm: Vm | undefined;
  let keys: SigstoreKeyPair;
  const digests: Record<string, string> = {};
  const guest = (): Vm => {
    if (!vm) throw new Error('the VM did not start');
    return vm;
  };

  beforeAll(async () => {
    scenario = await prepareUpdateScenario({ name: 'upgrade-qemu', push: { 'fixture:latest': 'v2', 'fixture:v2': 'v2', 'fixture:v3': 'v3' }, follows: 'fixture:latest' });
    keys = await makeSigstoreKeyPair(join(scenario.tmp, 'keys'), 'fleet');
    for (const tag of ['v2', 'v3']) {
      const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${scenario.registry.host}/fixture:${tag}`]);
      digests[tag] = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
    }
    await attachSigstoreSignature(scenario.registry.port, 'fixture', digests['v3']!, `${GUEST_REGISTRY}/fixture:v3`, keys.privateKey);
    vm = await bootScenario(scenario, 'upgrade', undefined, FIRMWARE);
    expect(await vm.runOk('test -d /sys/firmware/efi && echo uefi || echo bios')).toBe(FIRMWARE);
    const g = vm;
    const pem = readFileSync(keys.publicKeyPath).toString('base64');
    await g.runOk('mkdir -p /etc/pki/containers /etc/containers/registries.d');
    await g.runOk(`echo ${pem} | base64 -d > /etc/pki/containers/fleet.pub`);
    await g.runOk(`printf 'docker:\\n  ${GUEST_REGISTRY}:\\n    use-sigstore-attachments: true\\n' > /etc/containers/registries.d/fleet.yaml`);
    await g.runOk(`printf '%s' '${guestPolicy()}' > /etc/containers/policy.json`);
  }, 900_000);
  afterAll(async () => {
    await vm?.dispose();
    await scenario?.dispose();
  });

  it('signature policy: an unsigned v2 is refused with the reason, nothing is staged, deployed, cached or entered', async () => {
    const g = guest();
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('1');
    const leftovers = 'ls /sysroot/bootc/deploy/default; ls /boot/loader/entries; ls /var/cache/bootc/store/blobs/sha256 2>/dev/null | wc -l';
    const before = await g.runOk(leftovers);
    const r = await g.run('bootc upgrade --quiet', 900_000);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`image ${escape(GUEST_IMAGE)} \\(${digests['v2']}\\) is refused by the signature policy /etc/containers/policy\\.json, transports\\.docker "${escape(GUEST_REGISTRY)}/fixture", sigstoreSigned: no signature found`),
    );
    expect(await g.runOk('test -e /sysroot/bootc/staged && echo staged || echo none')).toBe('none');
    expect(await g.runOk('test -e /run/reboot-required && echo yes || echo no')).toBe('no');
    expect(await g.runOk(leftovers)).toBe(before);
    const status = JSON.parse(await g.runOk('bootc status --format json')) as { status: { staged: unknown } };
    expect(status.status.staged).toBeNull();
    // `--check` is held to the policy too, and a scope the policy does not name is rejected.
    expect((await g.run('bootc upgrade --check', 300_000)).stdout).toMatch(/sigstoreSigned: no signature found/);
    expect((await g.run(`bootc switch --quiet ${GUEST_REGISTRY}/elsewhere/os:v1`, 300_000)).stdout).toMatch(/default, reject: this scope rejects every image/);
    // --enforce-container-sigpolicy refuses a scope that would take unsigned images.
    const enforced = await g.run(`bootc switch --quiet --enforce-container-sigpolicy ${GUEST_REGISTRY}/open/os:v1`, 300_000);
    expect(enforced.exitCode).not.toBe(0);
    expect(enforced.stdout).toMatch(new RegExp(`--enforce-container-sigpolicy: the signature policy /etc/containers/policy\\.json \\(transports\\.docker "${escape(GUEST_REGISTRY)}/open"\\) would accept`));
    // Signed by the fleet key from here on: the upgrade below goes through the same policy.
    await attachSigstoreSignature(scenario!.registry.port, 'fixture', digests['v2']!, GUEST_IMAGE, keys.privateKey);
  }, 1_800_000);

  it('update --check, upgrade --tag v2, a timed finalising shutdown: v2 with the local /etc change and /var kept', async () => {
    const g = guest();
    const tagged = `${GUEST_REGISTRY}/fixture:v2`;
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('1');
    // Nothing staged: the path unit waits, the finalize service is not running.
    expect(await g.runOk('systemctl is-active bootc-finalize-staged.path')).toBe('active');
    expect((await g.run('systemctl is-active bootc-finalize-staged.service')).stdout.trim()).toBe('inactive');
    await g.runOk('echo user=mine > /etc/fixture/user.conf && echo kept > /var/kept-file');
    const check = await g.runOk('bootc update --check', 300_000);
    expect(check).toContain(`Update available for: ${GUEST_IMAGE}`);
    const out = await g.runOk('bootc upgrade --tag v2 --quiet', 900_000);
    expect(out).toContain(`Queued for next boot: ${tagged}`);
    expect(await g.runOk('test -e /run/reboot-required && echo yes')).toBe('yes');
    // The staged record started the service through the path unit; its ExecStop finalises.
    expect(await g.runOk('systemctl is-active bootc-finalize-staged.service')).toBe('active');
    const shutdown = await timedReboot(g, 600_000);
    console.log(`finalising shutdown: ${(shutdown.ms / 1000).toFixed(1)} s`);
    expect(shutdown.text).toMatch(FINALIZE_ON_CONSOLE);
    // Below the unit's TimeoutStopSec (5 min): the finalisation ended by itself.
    expect(shutdown.ms).toBeLessThan(240_000);
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('2');
    expect(await g.runOk('cat /etc/fixture/user.conf')).toBe('user=mine');
    expect(await g.runOk('cat /etc/fixture/image.conf')).toBe('image=2');
    expect(await g.runOk('cat /var/kept-file')).toBe('kept');
    const spec = JSON.parse(await g.runOk('bootc status --format json')) as { spec: { image: { image: string } } };
    expect(spec.spec.image.image).toBe(tagged);
    const booted = JSON.parse(await g.runOk('bootc status --format json')) as { status: { booted: { image: { imageDigest: string } } } };
    expect(booted.status.booted.image.imageDigest).toBe(digests['v2']);
    expect(await g.runOk('bootc upgrade --quiet', 300_000)).toContain(`No changes in: ${tagged}`);
    // Finalised and nothing new staged: the next shutdown has nothing to run.
    expect((await g.run('systemctl is-active bootc-finalize-staged.service')).stdout.trim()).toBe('inactive');
  }, 1_800_000);

  it('rollback, a timed shutdown that does not run bootc: v1 again', async () => {
    const g = guest();
    expect(await g.runOk('bootc rollback')).toBe('Next boot: rollback deployment');
    expect((await g.run('systemctl is-active bootc-finalize-staged.service')).stdout.trim()).toBe('inactive');
    const shutdown = await timedReboot(g, 600_000);
    console.log(`shutdown with nothing staged: ${(shutdown.ms / 1000).toFixed(1)} s`);
    expect(shutdown.text).not.toMatch(FINALIZE_ON_CONSOLE);
    // Below systemd's default 90 s stop timeout: nothing waited on a job.
    expect(shutdown.ms).toBeLessThan(60_000);
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('1');
  }, 900_000);

  it('rollback again through `bootc edit` (spec.bootOrder), reboot: v2', async () => {
    const g = guest();
    expect(await g.runOk("bootc status --format yaml | sed 's/bootOrder: default/bootOrder: rollback/' | bootc edit -f -")).toBe('Next boot: rollback deployment');
    await g.reboot(600_000);
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('2');
    expect(await g.runOk('cat /etc/fixture/user.conf')).toBe('user=mine');
  }, 900_000);

  it('switch to v3, which never completes a boot: after its tries v2 boots again by itself', async () => {
    const g = guest();
    const out = await g.runOk(`bootc switch --quiet ${GUEST_REGISTRY}/fixture:v3`, 900_000);
    expect(out).toContain(`Queued for next boot: ${GUEST_REGISTRY}/fixture:v3`);
    g.console.write('systemctl reboot\n');
    // v3 reboots itself (FailureAction=reboot) before any login; should a login slip
    // through, the release says which one it was.
    let release = '';
    for (let attempt = 0; attempt < 5 && release !== '2'; attempt++) {
      await g.waitForLogin(900_000);
      release = await g.runOk('cat /usr/lib/fixture-release').catch(() => '');
    }
    expect(release).toBe('2');
    const status = JSON.parse(await g.runOk('bootc status --format json')) as {
      status: { booted: { image: { version: string } }; rollback: { image: { version: string }; deployment: { bootState: string } } };
    };
    expect(status.status.booted.image.version).toBe('2');
    expect(status.status.rollback.image.version).toBe('3');
    expect(status.status.rollback.deployment.bootState).toBe('bad');
    expect(await g.runOk('bootc status')).toMatch(/Rollback image: .*fixture:v3[\s\S]*failed/);
  }, 1_800_000);

  it('usr-overlay: /usr writable until the next boot, and status says so', async () => {
    const g = guest();
    expect(await g.runOk('bootc usr-overlay')).toContain('A writable overlay is mounted on /usr');
    await g.runOk('echo patched > /usr/lib/fixture-patched');
    const overlay = async () => (JSON.parse(await g.runOk('bootc status --format json')) as { status: { usrOverlay: unknown } }).status.usrOverlay;
    expect(await overlay()).toEqual({ accessMode: 'readWrite', persistence: 'transient' });
    expect(await g.runOk('bootc status')).toContain('/usr overlay: transient, read/write');
    await g.reboot(600_000);
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('2');
    expect(await g.runOk('test -e /usr/lib/fixture-patched && echo kept || echo gone')).toBe('gone');
    expect(await overlay()).toBeNull();
  }, 900_000);
});
