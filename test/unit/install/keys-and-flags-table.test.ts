/**
 * Say yes or no, never nothing: every install-config key and every flag of `install
 * to-disk`, `install to-filesystem` and `image build-disk` is either applied (asserted on
 * what the command computes from it) or refused by name. A key or flag added without a row
 * here fails the completeness checks.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import yargs, { type Argv } from 'yargs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseWith as parse } from '../../support/cli-parse.js';
import { imageCommands, installCommands, type LazyCommand } from '../../../src/cli/commands.js';
import { buildDiskRequestFrom, loadConfig, type BuildDiskArgs } from '../../../src/cli/build-disk.js';
import { toDiskRequestOf, toFilesystemRequestOf, type ToDiskArgs, type ToFilesystemArgs } from '../../../src/cli/install.js';
import { mergeKernelArguments } from '../../../src/boot/kargs.js';
import { BIB_DEFAULT_KERNEL_ARGS, buildDiskKargs } from '../../../src/build-disk/build-disk.js';
import { ROOT_AARCH64_TYPE_GUID, planDiskLayout } from '../../../src/disk/gpt.js';
import {
  INSTALL_CONFIG_KEYS,
  parseInstallConfig,
  resolveInstallConfig,
  resolveInstallSettings,
  type InstallCommand,
  type InstallConfig,
  type InstallSettings,
} from '../../../src/install/config.js';
import { withAnswersFile } from '../../../src/install/answers.js';
import { tempDir } from '../../support/temp-tree.js';

const COMMANDS: InstallCommand[] = ['to-disk', 'to-filesystem', 'build-disk'];

/** The kernel command line an install writes from these settings (no kargs.d, no --karg). */
const kargsOf = (s: InstallSettings): string[] =>
  mergeKernelArguments({ rootFsUuid: 'U', stateroot: s.stateroot, deploymentId: 'd.0', installConfigKargs: s.installConfigKargs, deletes: s.kargDeletes });

interface KeyCase {
  /** The key set to something other than what we do anyway. */
  config: InstallConfig;
  /** As TOML, to prove the parser knows the key by this name. */
  toml: string;
  /** Values that mean what we do anyway: accepted by every command. */
  harmless?: InstallConfig[];
  applied?: (s: InstallSettings, command: InstallCommand) => void;
  /** What the refusal names. */
  refusedAs?: RegExp;
}

const KEY_CASES: Record<string, KeyCase> = {
  'root-fs-type': {
    config: { 'root-fs-type': 'btrfs' },
    toml: 'root-fs-type = "btrfs"',
    applied: (s, command) => {
      expect(s.rootFsType).toBe('btrfs');
      // to-filesystem keeps the user's filesystem and warns when it differs.
      if (command === 'to-filesystem') expect(s.rootFsTypeDefaulted).toBe(false);
    },
  },
  'filesystem.root.type': {
    config: { filesystem: { root: { type: 'xfs' } } },
    toml: '[install.filesystem.root]\ntype = "xfs"',
    applied: (s) => expect([s.rootFsType, s.rootFsTypeDefaulted]).toEqual(['xfs', false]),
  },
  block: {
    config: { block: ['tpm2-luks', 'direct'] },
    toml: 'block = ["tpm2-luks", "direct"]',
    harmless: [{ block: ['direct'] }, { block: ['direct', 'tpm2-luks'] }],
    refusedAs: /`block = \["tpm2-luks","direct"\]`: .*disk encryption is not implemented/,
    // to-filesystem: the block devices are the user's own, as upstream.
    applied: (s) => expect(s.rootFsTypeDefaulted).toBe(true),
  },
  kargs: {
    config: { kargs: ['nosmt', 'console=hvc0'] },
    toml: 'kargs = ["nosmt", "console=hvc0"]',
    applied: (s) => expect(kargsOf(s)).toEqual(['root=UUID=U', 'rw', 'nosmt', 'console=hvc0', 'bootc.deploy=default/d.0']),
  },
  'karg-deletes': {
    config: { kargs: ['quiet', 'splash'], 'karg-deletes': ['splash'] },
    toml: 'karg-deletes = ["splash"]',
    applied: (s) => expect(kargsOf(s)).toEqual(['root=UUID=U', 'rw', 'quiet', 'bootc.deploy=default/d.0']),
  },
  'match-architectures': {
    config: { 'match-architectures': ['x86_64'], stateroot: 'matched' },
    toml: 'match-architectures = ["x86_64"]',
    applied: (s) => {
      expect(s.stateroot).toBe('matched');
      const fragment = { path: '/usr/lib/bootc/install/10-arm.toml', text: '[install]\nmatch-architectures = ["aarch64"]\nstateroot = "arm"\n' };
      expect(resolveInstallConfig([fragment], 'x86_64')).toBeNull();
      expect(resolveInstallConfig([fragment], 'aarch64')?.stateroot).toBe('arm');
    },
  },
  'ostree.bls-append-except-default': {
    config: { ostree: { 'bls-append-except-default': 'grub_users=""' } },
    toml: '[install.ostree]\nbls-append-except-default = \'grub_users=""\'',
    refusedAs: /\[install\.ostree\] bls-append-except-default/,
  },
  stateroot: {
    config: { stateroot: 'myos' },
    toml: 'stateroot = "myos"',
    applied: (s) => expect(kargsOf(s)).toContain('bootc.deploy=myos/d.0'),
  },
  'root-mount-spec': {
    config: { 'root-mount-spec': 'LABEL=rootfs' },
    toml: 'root-mount-spec = "LABEL=rootfs"',
    applied: (s) => expect(s.rootMountSpec).toBe('LABEL=rootfs'),
  },
  'boot-mount-spec': {
    config: { 'boot-mount-spec': 'UUID=ABCD-1234' },
    toml: 'boot-mount-spec = "UUID=ABCD-1234"',
    applied: (s) => expect(s.bootMountSpec).toBe('UUID=ABCD-1234'),
  },
  'bootupd.skip-boot-uuid': {
    config: { bootupd: { 'skip-boot-uuid': true } },
    toml: '[install.bootupd]\nskip-boot-uuid = true',
    harmless: [{ bootupd: { 'skip-boot-uuid': false } }],
    refusedAs: /\[install\.bootupd\] skip-boot-uuid = true/,
  },
  bootloader: {
    config: { bootloader: 'hybrid' },
    toml: 'bootloader = "hybrid"',
    harmless: [{ bootloader: 'systemd' }],
    applied: (s) => expect(s.bootloader).toBe('hybrid'),
    refusedAs: /`bootloader = "hybrid"`: to-filesystem does not build "hybrid" disks yet/,
  },
  'discoverable-partitions': {
    config: { 'discoverable-partitions': true },
    toml: 'discoverable-partitions = true',
    applied: (s) => {
      expect(s.discoverablePartitions).toBe(true);
      expect(s.rootMountSpec).toBe('');
      // The partition the generator looks for: the DPS root type of the image's architecture.
      expect(planDiskLayout({ rootMinBytes: 2 ** 30, arch: 'aarch64' }).root.typeGuid).toBe(ROOT_AARCH64_TYPE_GUID);
    },
  },
  'enforce-container-sigpolicy': {
    config: { 'enforce-container-sigpolicy': true },
    toml: 'enforce-container-sigpolicy = true',
    harmless: [{ 'enforce-container-sigpolicy': false }],
    // The pipelines then refuse an image the signature policy would accept unsigned (privileged tests).
    applied: (s) => expect(s.enforceContainerSigpolicy).toBe(true),
  },
};

describe('every install-config key: applied or refused by name', () => {
  it('the table has a row for every key the install config accepts, and no other', () => {
    expect(Object.keys(KEY_CASES).sort()).toEqual(Object.keys(INSTALL_CONFIG_KEYS).sort());
  });

  for (const [key, c] of Object.entries(KEY_CASES)) {
    it(`${key} is a key the parser knows`, () => {
      expect(parseInstallConfig('/usr/lib/bootc/install/00-test.toml', `[install]\n${c.toml}\n`)).not.toBeNull();
    });
    for (const command of COMMANDS) {
      const handling = INSTALL_CONFIG_KEYS[key]![command];
      it(`${command}: ${key} is ${handling}`, () => {
        if (handling === 'refused') {
          expect(c.refusedAs, `${key} has no refusal message to check`).toBeDefined();
          expect(() => resolveInstallSettings(c.config, {}, command)).toThrow(c.refusedAs!);
        } else {
          expect(c.applied, `${key} has no assertion of its effect`).toBeDefined();
          c.applied!(resolveInstallSettings(c.config, {}, command), command);
        }
        for (const harmless of c.harmless ?? []) expect(() => resolveInstallSettings(harmless, {}, command)).not.toThrow();
      });
    }
  }

  it('flags win over the keys they override', () => {
    const config: InstallConfig = { filesystem: { root: { type: 'xfs' } }, stateroot: 'cfg', 'root-mount-spec': 'LABEL=a', 'boot-mount-spec': 'UUID=A', 'karg-deletes': ['quiet'] };
    const s = resolveInstallSettings(config, { filesystem: 'btrfs', stateroot: 'flag', rootMountSpec: 'LABEL=b', bootMountSpec: '', kargDeletes: ['splash'] }, 'to-disk');
    expect(s).toMatchObject({ rootFsType: 'btrfs', stateroot: 'flag', rootMountSpec: 'LABEL=b', bootMountSpec: '', kargDeletes: ['quiet', 'splash'] });
  });

  it('no config: ext4, stateroot default, root=UUID, the ESP by UUID', () => {
    expect(resolveInstallSettings(null, {}, 'build-disk')).toEqual({
      rootFsType: 'ext4',
      rootFsTypeDefaulted: true,
      stateroot: 'default',
      installConfigKargs: [],
      kargDeletes: [],
      discoverablePartitions: false,
      enforceContainerSigpolicy: false,
    });
  });
});

// ---- flags ------------------------------------------------------------------------------

const verb = (list: LazyCommand[], name: string): LazyCommand => list.find((c) => String(c.command).startsWith(`${name} `))!;


/** Every flag a command declares (kebab-case, as typed), help and version aside. */
function declaredFlags(cmd: LazyCommand): string[] {
  const y = yargs([]);
  (cmd.builder as (y: Argv) => Argv)(y);
  const options = (y as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions();
  return Object.keys(options.key).filter((k) => !/[A-Z]/.test(k) && !['help', 'version', '$0', '_'].includes(k));
}

// The rows name these files while the file is collected, so the directory is made then.
const work = tempDir('keys-and-flags', {
  files: {
    'config.toml': '[customizations.kernel]\nappend = "quiet"\n',
    'medium-answers.toml': '[disk]\nsize = "largest"\nwipe = true\n[options]\nfinish = "reboot"\n',
  },
});
afterAll(() => work.remove());
const tmp = work.path;
// Files build-disk's flags name are read when its request is made.

/** A flag's row: the words to add, and what must follow in the request the command makes. */
interface FlagCase {
  argv: string[];
  check: (r: { args: Record<string, unknown>; request: Record<string, unknown> }) => void | Promise<void>;
  /** These words alone are refused when the request is made, naming the flag. */
  refusedAs?: RegExp;
}

const SIGN_CERT_ALONE: FlagCase = { argv: ['--sign-cert', 'c.pem'], check: () => undefined, refusedAs: /--sign-key and --sign-cert go together/ };

const positional = (name: string) => ({ argv: [], check: () => undefined, positional: name });

const SHARED_INSTALL: Record<string, FlagCase> = {
  'source-imgref': { argv: ['--source-imgref', 'oci:/srv/os:v2'], check: ({ request }) => expect(request['image']).toMatchObject({ transport: 'oci', name: '/srv/os', tag: 'v2' }) },
  'target-imgref': { argv: ['--target-imgref', 'quay.io/x/os:stable'], check: ({ request }) => expect(request['targetImage']).toEqual({ image: 'quay.io/x/os:stable', transport: 'registry' }) },
  'target-transport': {
    argv: ['--target-imgref', '/srv/os.tar', '--target-transport', 'oci-archive'],
    check: ({ request }) => expect(request['targetImage']).toEqual({ image: '/srv/os.tar', transport: 'oci-archive' }),
  },
  karg: { argv: ['--karg', 'quiet'], check: ({ request }) => expect(request['kargs']).toEqual(['quiet']) },
  'karg-delete': { argv: ['--karg-delete', 'rhgb'], check: ({ request }) => expect(request['kargDeletes']).toEqual(['rhgb']) },
  uki: { argv: ['--uki'], check: ({ request }) => expect(request['uki']).toBe(true) },
  'sign-key': { argv: ['--sign-key', 'k.pem', '--sign-cert', 'c.pem'], check: ({ request }) => expect(request['signing']).toEqual({ key: resolve('k.pem'), cert: resolve('c.pem') }) },
  'sign-cert': SIGN_CERT_ALONE,
  'root-ssh-authorized-keys': { argv: ['--root-ssh-authorized-keys', '/k'], check: ({ request }) => expect(request['rootSshAuthorizedKeysFile']).toBe('/k') },
  stateroot: { argv: ['--stateroot', 'myos'], check: ({ request }) => expect(request['stateroot']).toBe('myos') },
  store: { argv: ['--store', '/srv/store'], check: ({ request }) => expect(request['storeDir']).toBe('/srv/store') },
  platform: { argv: ['--platform', 'linux/arm64'], check: ({ request }) => expect(request['platform']).toEqual({ os: 'linux', architecture: 'arm64' }) },
  // Progress flags are read by createProgress, which every command shares.
  quiet: { argv: ['--quiet'], check: ({ args }) => expect(args['quiet']).toBe(true) },
  'progress-fd': { argv: ['--progress-fd', '3'], check: ({ args }) => expect(args['progressFd']).toBe(3) },
  // Always in effect: the ESP writers never touch firmware variables (there is no code that could).
  'generic-image': { argv: ['--generic-image'], check: ({ args }) => expect(args['genericImage']).toBe(true) },
  // Upstream's flags for install-config keys: what we cannot do is refused before anything is read.
  bootloader: { argv: ['--bootloader', 'grub'], check: () => undefined, refusedAs: /^--bootloader grub: this bootc boots UEFI through systemd-boot, never GRUB/ },
  'bootupd-skip-boot-uuid': { argv: ['--bootupd-skip-boot-uuid'], check: () => undefined, refusedAs: /^--bootupd-skip-boot-uuid: it configures bootupd's GRUB/ },
  'enforce-container-sigpolicy': {
    argv: ['--enforce-container-sigpolicy'],
    check: ({ request }) => {
      const policy = request['policy'] as Record<string, unknown>;
      expect(policy['enforceContainerSigpolicy']).toBe(true);
      expect(resolveInstallSettings(null, policy, 'to-disk').enforceContainerSigpolicy).toBe(true);
    },
  },
  'signature-policy': { argv: ['--signature-policy', 'p.json'], check: ({ request }) => expect(request['signaturePolicy']).toBe(resolve('p.json')) },
};

const TO_DISK: Record<string, FlagCase> = {
  ...SHARED_INSTALL,
  device: positional('device'),
  config: {
    argv: ['--config', join(tmp, 'answers.toml')],
    check: async ({ args }) => {
      writeFileSync(join(tmp, 'answers.toml'), '[image]\nsource = "oci:/srv/os:v1"\n[disk]\npath = "/dev/vdb"\n[options]\nkargs = ["quiet"]\n');
      const applied = await withAnswersFile(args as unknown as ToDiskArgs, args['config'] as string);
      expect(applied.sourceImgref).toBe('oci:/srv/os:v1');
    },
  },
  wipe: { argv: ['--wipe'], check: ({ request }) => expect(request['wipe']).toBe(true) },
  filesystem: { argv: ['--filesystem', 'xfs'], check: ({ request }) => expect(request['filesystem']).toBe('xfs') },
  'block-setup': { argv: ['--block-setup', 'tpm2-luks'], check: () => undefined, refusedAs: /^--block-setup tpm2-luks: disk encryption is not implemented yet/ },
  'root-size': { argv: ['--root-size', '20G'], check: ({ request }) => expect(request['rootSizeBytes']).toBe(20 * 2 ** 30) },
  'via-loopback': { argv: ['--via-loopback'], check: ({ request }) => expect([request['viaLoopback'], request['genericImage']]).toEqual([true, true]) },
  'generic-image': { argv: ['--generic-image'], check: ({ request }) => expect(request['genericImage']).toBe(true) },
};

const TO_FILESYSTEM: Record<string, FlagCase> = {
  ...SHARED_INSTALL,
  'root-path': positional('rootPath'),
  'root-mount-spec': { argv: ['--root-mount-spec', 'LABEL=root'], check: ({ request }) => expect(request['rootMountSpec']).toBe('LABEL=root') },
  'boot-mount-spec': { argv: ['--boot-mount-spec', ''], check: ({ request }) => expect(request['bootMountSpec']).toBe('') },
  replace: { argv: ['--replace', 'alongside'], check: ({ request }) => expect(request['replace']).toBe('alongside') },
  esp: { argv: ['--esp', '/dev/vdb1'], check: ({ request }) => expect(request['esp']).toBe('/dev/vdb1') },
  'skip-finalize': { argv: ['--skip-finalize'], check: ({ request }) => expect(request['skipFinalize']).toBe(true) },
};

const BUILD_DISK: Record<string, FlagCase> = {
  image: positional('image'),
  type: { argv: ['--type', 'raw', '--type', 'vhd', '--type', 'iso'], check: ({ request }) => expect(request['types']).toEqual(['raw', 'vhd', 'iso']) },
  'installer-answers': {
    argv: ['--type', 'iso', '--installer-answers', join(tmp, 'medium-answers.toml')],
    check: ({ request }) =>
      expect(request['installerAnswers']).toMatchObject({ answers: { disk: { by: 'size', size: 'largest' }, wipe: true, finish: 'reboot' } }),
  },
  rootfs: { argv: ['--rootfs', 'btrfs'], check: ({ request }) => expect(request['rootfs']).toBe('btrfs') },
  bootloader: { argv: ['--bootloader', 'systemd'], check: ({ request }) => expect(request['bootloader']).toBe('systemd') },
  size: { argv: ['--size', '20 GiB'], check: ({ request }) => expect(request['sizeBytes']).toBe(20 * 2 ** 30) },
  config: {
    argv: ['--config', join(tmp, 'config.toml')],
    check: async ({ args, request }) => {
      expect((await loadConfig(args['config'] as string)).kernelAppend).toEqual(['quiet']);
      expect((request['config'] as { kernelAppend: string[] }).kernelAppend).toEqual(['quiet']);
    },
  },
  output: { argv: ['--output', '/srv/out'], check: ({ request }) => expect(request['outputDir']).toBe('/srv/out') },
  karg: {
    argv: ['--karg', 'quiet'],
    check: ({ request }) => expect(buildDiskKargs(request as never)).toEqual([...BIB_DEFAULT_KERNEL_ARGS, 'quiet']),
  },
  'default-kernel-args': {
    argv: ['--no-default-kernel-args', '--karg', 'quiet'],
    check: ({ request }) => expect(buildDiskKargs(request as never)).toEqual(['quiet']),
  },
  uki: { argv: ['--uki'], check: ({ request }) => expect(request['uki']).toBe(true) },
  'sign-key': { argv: ['--sign-key', 'k.pem', '--sign-cert', 'c.pem'], check: ({ request }) => expect(request['signing']).toEqual({ key: resolve('k.pem'), cert: resolve('c.pem') }) },
  'sign-cert': SIGN_CERT_ALONE,
  stateroot: { argv: ['--stateroot', 'myos'], check: ({ request }) => expect(request['stateroot']).toBe('myos') },
  'target-imgref': { argv: ['--target-imgref', 'quay.io/x/os:stable'], check: ({ request }) => expect(request['targetImage']).toEqual({ image: 'quay.io/x/os:stable', transport: 'registry' }) },
  store: { argv: ['--store', '/srv/store'], check: ({ request }) => expect(request['storeDir']).toBe('/srv/store') },
  'work-dir': { argv: ['--work-dir', '/srv/work'], check: ({ request }) => expect(request['workDir']).toBe('/srv/work') },
  platform: { argv: ['--platform', 'linux/arm64'], check: ({ request }) => expect(request['platform']).toEqual({ os: 'linux', architecture: 'arm64' }) },
  force: { argv: ['--force'], check: ({ request }) => expect(request['force']).toBe(true) },
  'signature-policy': { argv: ['--signature-policy', 'p.json'], check: ({ request }) => expect(request['signaturePolicy']).toBe(resolve('p.json')) },
  quiet: { argv: ['--quiet'], check: ({ args }) => expect(args['quiet']).toBe(true) },
  'progress-fd': { argv: ['--progress-fd', '3'], check: ({ args }) => expect(args['progressFd']).toBe(3) },
};

const FLAG_TABLES: Array<{ name: string; cmd: LazyCommand; table: Record<string, FlagCase>; positionals: string[]; request: (args: Record<string, unknown>) => Promise<Record<string, unknown>> }> = [
  {
    name: 'install to-disk',
    cmd: verb(installCommands, 'to-disk'),
    table: TO_DISK,
    positionals: ['/dev/vdb'],
    request: async (args) => ({ ...toDiskRequestOf({ ...(args as unknown as ToDiskArgs), device: args['device'] as string }) }),
  },
  {
    name: 'install to-filesystem',
    cmd: verb(installCommands, 'to-filesystem'),
    table: TO_FILESYSTEM,
    positionals: ['/run/target'],
    request: async (args) => ({ ...toFilesystemRequestOf(args as unknown as ToFilesystemArgs) }),
  },
  {
    name: 'image build-disk',
    cmd: verb(imageCommands, 'build-disk'),
    table: BUILD_DISK,
    positionals: ['oci:/srv/os:v1'],
    request: async (args) => ({ ...(await buildDiskRequestFrom(args as unknown as BuildDiskArgs)) }),
  },
];

describe('every flag of install and build-disk: applied', () => {
  for (const { name, cmd, table, positionals, request } of FLAG_TABLES) {
    it(`${name}: the table has a row for every flag and positional, and no other`, () => {
      const positionalNames = String(cmd.command).split(' ').slice(1).map((p) => p.replace(/[<>[\]]/g, ''));
      expect(Object.keys(table).sort()).toEqual([...declaredFlags(cmd), ...positionalNames].filter((v, i, a) => a.indexOf(v) === i).sort());
    });
    for (const [flag, c] of Object.entries(table)) {
      if (c.argv.length === 0) continue;
      it(`${name} ${c.argv.join(' ')}`, async () => {
        const needsSource = name.startsWith('install') && flag !== 'source-imgref';
        const argv = [String(cmd.command).split(' ')[0]!, ...(needsSource ? ['--source-imgref', 'oci:/srv/os:v1'] : []), ...c.argv, ...positionals];
        const args = await parse(cmd, argv);
        if (c.refusedAs) {
          await expect(request(args)).rejects.toThrow(c.refusedAs);
          return;
        }
        await c.check({ args, request: await request(args) });
      });
    }
  }

  it('the values of those flags that mean what we do pass, and win over the keys', async () => {
    for (const name of ['install to-disk', 'install to-filesystem']) {
      const words = ['--source-imgref', 'oci:/srv/os:v1', '--bootloader', 'systemd', '--no-bootupd-skip-boot-uuid', '--no-enforce-container-sigpolicy'];
      if (name === 'install to-disk') words.push('--block-setup', 'direct');
      const request = await request0(name, [...words, name === 'install to-disk' ? '/dev/vdb' : '/run/target']);
      const policy = request['policy'] as Record<string, unknown>;
      expect(policy).toMatchObject({ bootloader: 'systemd', bootupdSkipBootUuid: false, enforceContainerSigpolicy: false });
      const command = name === 'install to-disk' ? 'to-disk' : 'to-filesystem';
      expect(() => resolveInstallSettings({ bootloader: 'grub', block: ['tpm2-luks', 'direct'] }, policy, command)).not.toThrow();
    }
  });

  it('the positionals reach the request', async () => {
    expect((await request0('install to-disk', ['--source-imgref', 'oci:/srv/os:v1', '/dev/vdb']))['device']).toBe('/dev/vdb');
    expect((await request0('install to-filesystem', ['--source-imgref', 'oci:/srv/os:v1', '/run/target']))['rootPath']).toBe('/run/target');
    expect((await request0('image build-disk', ['oci:/srv/os:v1']))['image']).toMatchObject({ transport: 'oci', name: '/srv/os', tag: 'v1' });
  });
});

async function request0(name: string, words: string[]): Promise<Record<string, unknown>> {
  const t = FLAG_TABLES.find((f) => f.name === name)!;
  return t.request(await parse(t.cmd, [String(t.cmd.command).split(' ')[0]!, ...words]));
}
