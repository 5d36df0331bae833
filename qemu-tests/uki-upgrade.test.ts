/**
 * qemu tier, issue #7: a disk installed with `--uki` from fixture:v1 (following
 * 10.0.2.100:5000/fixture:latest, which is v2 in a registry on the host, reached only
 * through the restricted guestfwd). In the guest `bootc upgrade` stages a UKI for v2
 * (EFI/Linux/<name>.staged, not in the menu); the reboot finalises it, and systemd-boot
 * boots the v2 UKI: release 2, /proc/cmdline names the v2 deployment and LoaderEntrySelected
 * its UKI. `bootc rollback` rewrites the boot order inside the v1 UKI; a reboot brings
 * release 1 back. One VM, two reboots.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsFile } from '../test/support/tier.js';
import { v1RootfsDir } from '../fixtures/paths.js';
import type { Vm } from './harness.js';
import { bootScenario, GUEST_REGISTRY, prepareUpdateScenario, updateScenarioSkipReason, type UpdateScenario } from './update-scenario.js';

const ENTRY_SELECTED_VAR = '/sys/firmware/efi/efivars/LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f';
const efiVarText = (path: string): string => `cat ${path} | tail -c +5 | tr -d '\\000'`;
/** The UKI of `<stateroot>/<id>` as systemd-boot names the entry (252 keeps a boot counter in it). */
const ukiEntryOf = (deployment: string): RegExp => new RegExp(`^bootc-${deployment.replace('/', '-').replace(/\./g, '\\.')}(\\+\\d+(-\\d+)?)?\\.efi$`);

const skip = explainSkip(
  'qemu',
  updateScenarioSkipReason() ??
    // The image carries the CLI as it was when the fixtures were built.
    needsFile(join(v1RootfsDir, 'usr/bin/bootc'), 'the fixture image has no tool layer: rebuild the fixtures (`make fixtures`)'),
);

const GUEST_IMAGE = `${GUEST_REGISTRY}/fixture:latest`;

describe.skipIf(skip)('bootc upgrade and rollback of a UKI system in the booted guest', () => {
  let scenario: UpdateScenario | undefined;
  let vm: Vm | undefined;
  const guest = (): Vm => {
    if (!vm) throw new Error('the VM did not start');
    return vm;
  };
  const bootedDeployment = async (): Promise<string> => {
    const arg = (await guest().runOk('cat /proc/cmdline')).split(/\s+/).find((a) => a.startsWith('bootc.deploy='));
    return arg?.slice('bootc.deploy='.length) ?? '';
  };

  beforeAll(async () => {
    scenario = await prepareUpdateScenario({ name: 'uki-upgrade-qemu', push: { 'fixture:latest': 'v2' }, follows: 'fixture:latest', installArgs: ['--uki'] });
    vm = await bootScenario(scenario, 'uki-upgrade');
  }, 900_000);
  afterAll(async () => {
    await vm?.dispose();
    await scenario?.dispose();
  });

  it('upgrade v1 → v2 stages a UKI; reboot: the v2 UKI boots v2', async () => {
    const g = guest();
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('1');
    const v1 = await bootedDeployment();
    expect(v1).toMatch(/^default\//);
    expect(await g.runOk('bootc upgrade --quiet', 900_000)).toContain(`Queued for next boot: ${GUEST_IMAGE}`);
    const staged = await g.runOk('ls -1 /boot/EFI/Linux');
    expect(staged).toMatch(/^bootc-default-.*\.efi\.staged$/m);
    expect(await g.runOk('ls -A /boot/loader/entries 2>/dev/null | wc -l')).toBe('0');

    await g.reboot(600_000);
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('2');
    const v2 = await bootedDeployment();
    expect(v2).not.toBe(v1);
    expect(await g.runOk(efiVarText(ENTRY_SELECTED_VAR))).toMatch(ukiEntryOf(v2));
    expect(await g.runOk('ls -1 /boot/EFI/Linux')).not.toContain('.staged');
    const status = JSON.parse(await g.runOk('bootc status --format json')) as {
      status: { booted: { image: { version: string } }; rollback: { image: { version: string }; deployment: { bootEntry: string } } };
    };
    expect(status.status.booted.image.version).toBe('2');
    expect(status.status.rollback.image.version).toBe('1');
    expect(status.status.rollback.deployment.bootEntry).toMatch(/\.efi$/);
  }, 1_800_000);

  it('rollback, reboot: the v1 UKI boots v1', async () => {
    const g = guest();
    expect(await g.runOk('bootc rollback')).toBe('Next boot: rollback deployment');
    await g.reboot(600_000);
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe('1');
    const v1 = await bootedDeployment();
    expect(await g.runOk(efiVarText(ENTRY_SELECTED_VAR))).toMatch(ukiEntryOf(v1));
  }, 900_000);
});
