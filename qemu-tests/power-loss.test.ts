/**
 * qemu tier: power cuts during updates. One disk, installed with fixture:v1; each run boots
 * it, starts `bootc switch` to the image it does not run (fixture:v1 and fixture:v2 are
 * pushed as :a and :b), and pulls the plug at a random moment, either while the switch
 * runs or, once it has staged, during the shutdown that finalises it. The next boot must
 * reach the login with a complete deployment: every boot entry's files on the ESP, every
 * entry's deployment with its origin, `bootc status` answering. In the soak (more than two
 * runs), a last switch that is left alone must still work, so nothing a cut left behind
 * blocks the next update.
 *
 * The disk is hybrid (install to-disk's default on x86_64): `make test` boots it under
 * SeaBIOS, so GRUB reads the menu and grubenv the cut finalisation left, and the check also
 * holds GRUB's menu to the boot entries; `make soak` alternates SeaBIOS and OVMF.
 * BOOTC_POWER_CUT_RUNS sets the number of runs (default 2, one of each kind; `make soak`
 * runs 20). BOOTC_POWER_CUT_SEED repeats a run's random moments; both are printed.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsFile } from '../test/support/tier.js';
import { v1RootfsDir } from '../fixtures/paths.js';
import type { Vm } from './harness.js';
import { bootScenario, GUEST_REGISTRY, prepareUpdateScenario, testFirmware, updateScenarioSkipReason, type Firmware, type UpdateScenario } from './update-scenario.js';

const skip = explainSkip(
  'qemu',
  updateScenarioSkipReason() ??
    needsFile(join(v1RootfsDir, 'usr/bin/bootc'), 'the fixture image has no tool layer: rebuild the fixtures (`make fixtures`)'),
);

const RUNS = Number(process.env['BOOTC_POWER_CUT_RUNS'] ?? '2');
const SEED = Number(process.env['BOOTC_POWER_CUT_SEED'] ?? String(Date.now() % 1_000_000));

/** mulberry32: small, seedable, good enough to spread the cuts. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Prints what is wrong with the boot entries and deployments; nothing when all is well. */
const COHERENCE_CHECK = [
  'for e in /boot/loader/entries/*.conf; do',
  '  for f in $(awk \'$1=="linux"||$1=="initrd"{print $2}\' "$e"); do test -s "/boot$f" || echo "entry $e: /boot$f missing"; done;',
  '  d=$(grep -o "bootc.deploy=[^ ]*" "$e" | cut -d= -f2);',
  '  test -e "/sysroot/bootc/deploy/$d.origin" || echo "entry $e: deployment $d has no origin";',
  '  test -d "/sysroot/bootc/deploy/$d/usr" || echo "entry $e: deployment $d has no checkout";',
  'done;',
  // A hybrid disk: every file GRUB's menu names is on the ESP. (The menu may lag the entries
  // by one finalisation after a cut between the two writes: both boot.)
  'if test -e /boot/grub/grub.cfg; then',
  '  for f in $(awk \'$1=="linux"||$1=="initrd"{print $2}\' /boot/grub/grub.cfg); do test -s "/boot$f" || echo "grub.cfg: /boot$f missing"; done;',
  'fi',
].join(' ');

/**
 * The firmware of run `run`: SeaBIOS (GRUB) in `make test`; BOOTC_TEST_FIRMWARE=alternate
 * (`make soak`) takes each kind of cut under both, pair by pair.
 */
function firmwareOf(run: number): Firmware {
  if (process.env['BOOTC_TEST_FIRMWARE'] === 'alternate') return Math.floor(run / 2) % 2 === 0 ? 'bios' : 'uefi';
  return testFirmware('bios');
}

describe.skipIf(skip)(`power cuts during bootc switch and finalisation (${RUNS} runs, seed ${SEED})`, () => {
  let scenario: UpdateScenario | undefined;
  let vm: Vm | undefined;
  const rand = random(SEED);

  beforeAll(async () => {
    scenario = await prepareUpdateScenario({ name: 'power-loss-qemu', push: { 'fixture:a': 'v1', 'fixture:b': 'v2' }, follows: 'fixture:a' });
  }, 900_000);
  afterAll(async () => {
    await vm?.dispose();
    await scenario?.dispose();
  });

  /** Boots the disk and checks it booted a complete deployment; returns its release. */
  async function bootAndCheck(name: string, firmware: Firmware): Promise<string> {
    // A run that failed its checks left its VM running, holding the disk's write lock.
    await vm?.dispose();
    vm = undefined;
    vm = await bootScenario(scenario!, name, 900_000, firmware);
    expect(await vm.runOk('test -d /sys/firmware/efi && echo uefi || echo bios')).toBe(firmware);
    const release = await vm.runOk('cat /usr/lib/fixture-release');
    expect(['1', '2']).toContain(release);
    expect(await vm.runOk(COHERENCE_CHECK, 60_000)).toBe('');
    const status = JSON.parse(await vm.runOk('bootc status --format json', 120_000)) as { status: { booted: { image: { version: string } } | null } };
    expect(status.status.booted?.image.version).toBe(release);
    return release;
  }

  const switchTo = (release: string): string => `bootc switch --quiet ${GUEST_REGISTRY}/fixture:${release === '1' ? 'b' : 'a'}`;

  for (let run = 0; run < RUNS; run++) {
    const during = run % 2 === 0 ? 'switch' : 'finalisation';
    const firmware = firmwareOf(run);
    it(`run ${run + 1} (${firmware === 'bios' ? 'SeaBIOS, GRUB' : 'OVMF, systemd-boot'}): cut during ${during}, the next boot is complete`, async () => {
      const release = await bootAndCheck(`power-loss-${run + 1}`, firmware);
      const g = vm!;
      if (during === 'switch') {
        // The switch fetches one small layer, imports it and checks out a whole tree: ~10-60 s here.
        const delayMs = Math.round(1000 + rand() * 40_000);
        console.log(`run ${run + 1}: cutting power ${delayMs} ms into \`${switchTo(release)}\``);
        g.console.write(`${switchTo(release)} >/dev/null 2>&1 &\n`);
        await new Promise((r) => setTimeout(r, delayMs));
      } else {
        await g.runOk(switchTo(release), 900_000);
        const delayMs = Math.round(rand() * 12_000);
        console.log(`run ${run + 1}: cutting power ${delayMs} ms into the shutdown that finalises`);
        g.console.write('systemctl reboot\n');
        await new Promise((r) => setTimeout(r, delayMs));
      }
      await g.dispose(); // SIGKILL: the plug
      vm = undefined;
    }, 1_800_000);
  }

  it(`after the last cut the disk boots complete${RUNS > 2 ? ', and an uninterrupted switch still works' : ''}`, async () => {
    const release = await bootAndCheck('power-loss-final', firmwareOf(RUNS));
    // Two more boots' worth: the soak does it, `make test` stops at the check above.
    if (RUNS <= 2) return;
    const g = vm!;
    await g.runOk(switchTo(release), 900_000);
    await g.reboot(900_000);
    expect(await g.runOk('cat /usr/lib/fixture-release')).toBe(release === '1' ? '2' : '1');
    expect(await g.runOk(COHERENCE_CHECK, 60_000)).toBe('');
  }, 1_800_000);
});
