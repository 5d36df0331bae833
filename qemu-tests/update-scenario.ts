/**
 * The set-up the update scenarios share: a docker-registry on the host holding some fixture
 * tags, a disk installed from fixture:v1 that follows one of them, and the guest booted from
 * it and told that the registry (reached only through the restricted guestfwd) is plain
 * HTTP. What each scenario then does in the guest is its own.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { execa } from 'execa';
import { needsCommands, needsFile, needsLoopDevices } from '../test/support/tier.js';
import { needsRegistryTools, pushToRegistry, startRegistry, type TestRegistry } from '../test/support/registry.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef, type FixtureTag } from '../fixtures/paths.js';
import { GUEST_REGISTRY_HOST, GUEST_REGISTRY_PORT, OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, startVm, type Vm } from './harness.js';
import { tempDir, DISK_TMP } from '../test/support/temp-tree.js';

/** The registry as the guest names it. */
export const GUEST_REGISTRY = `${GUEST_REGISTRY_HOST}:${GUEST_REGISTRY_PORT}`;

/** A shell command for the guest: the test registry speaks plain HTTP. */
export const TRUST_GUEST_REGISTRY = `mkdir -p /etc/containers/registries.conf.d && printf '[[registry]]\\nlocation = "${GUEST_REGISTRY}"\\ninsecure = true\\n' > /etc/containers/registries.conf.d/50-test.conf`;

/** Why an update scenario cannot run here (the tools, OVMF and the fixtures), or null. */
export function updateScenarioSkipReason(): string | null {
  return (
    needsLoopDevices() ??
    needsCommands(QEMU, 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'blkid', 'wipefs', 'fstrim', 'skopeo', 'socat') ??
    needsRegistryTools() ??
    needsFile(OVMF_CODE, 'install the Debian package ovmf') ??
    needsFile(OVMF_VARS_TEMPLATE, 'install the Debian package ovmf') ??
    needsFile(fixturesIndexPath, fixturesHint)
  );
}

export const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false, all: true });

export interface UpdateScenario {
  tmp: string;
  registry: TestRegistry;
  disk: string;
  dispose(): Promise<void>;
}

export interface UpdateScenarioOptions {
  /** For the temporary directory's name. */
  name: string;
  /** Registry repository:tag → the fixture pushed there, e.g. { 'fixture:latest': 'v2' }. */
  push: Record<string, FixtureTag>;
  /** The repository:tag the installed system follows. */
  follows: string;
  /** More `install to-disk` flags, e.g. --uki. */
  installArgs?: string[];
}

/** The registry filled and a 6 GB disk installed from fixture:v1, not booted yet. */
export async function prepareUpdateScenario(options: UpdateScenarioOptions): Promise<UpdateScenario> {
  const scratch = tempDir(options.name, { under: DISK_TMP });
  const tmp = scratch.path;
  let registry: TestRegistry | undefined;
  const dispose = async (): Promise<void> => {
    await registry?.stop();
    scratch.remove();
  };
  try {
    registry = await startRegistry();
    for (const [target, fixture] of Object.entries(options.push)) await pushToRegistry(registry, ociLayoutRef(fixture), target);
    const disk = join(tmp, 'disk.raw');
    execFileSync('truncate', ['-s', '6G', disk]);
    const r = await cli('install', 'to-disk', '--via-loopback', disk, ...(options.installArgs ?? []), '--source-imgref', ociLayoutRef('v1'),
      '--target-imgref', `${GUEST_REGISTRY}/${options.follows}`, '--store', join(tmp, 'store'));
    if (r.exitCode !== 0) throw new Error(`bootc install to-disk ${(options.installArgs ?? []).join(' ')} failed:\n${r.all}`);
    return { tmp, registry, disk, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

export type Firmware = 'uefi' | 'bios';

/**
 * The firmware a scenario boots with: BOOTC_TEST_FIRMWARE (uefi or bios) when set, so
 * `make soak` can run a scenario under the other one, else `fallback`. The scenario's disk
 * is hybrid (install to-disk's default on x86_64): systemd-boot under OVMF, GRUB under SeaBIOS.
 */
export function testFirmware(fallback: Firmware): Firmware {
  const chosen = process.env['BOOTC_TEST_FIRMWARE'];
  if (chosen === undefined || chosen === '' || chosen === 'alternate') return fallback;
  if (chosen !== 'uefi' && chosen !== 'bios') throw new Error(`BOOTC_TEST_FIRMWARE=${chosen}: expected uefi, bios or alternate`);
  return chosen;
}

/** Boots the scenario's disk, waits for the login and trusts the registry in the guest. */
export async function bootScenario(scenario: UpdateScenario, name: string, loginTimeoutMs?: number, firmware: Firmware = 'uefi'): Promise<Vm> {
  const vm = await startVm({ name, boot: { kind: firmware }, disks: [{ path: scenario.disk, format: 'raw' }], registryPort: scenario.registry.port, memoryMiB: 2048 });
  try {
    await vm.waitForLogin(loginTimeoutMs);
    await vm.runOk(TRUST_GUEST_REGISTRY);
    return vm;
  } catch (err) {
    await vm.dispose();
    throw err;
  }
}
