/**
 * The verbs of the CLI. Each entry declares its flags (needed for --help) and imports its
 * implementation only when it runs, so `bootc status` never loads the installer's UI.
 * A verb is listed here only once it works end to end.
 *
 * A verb is declared with `command()`: its positionals and options as plain objects, from
 * which the handler's argument type is inferred, so a flag the implementation reads but the
 * verb does not declare (or declares with another type) is a compile error, not a cast.
 */
import type { ArgumentsCamelCase, Argv, CommandModule, InferredOptionType, Options, PositionalOptions } from 'yargs';
import { installFlags, repeatable } from '../install/options.js';

export { repeatable };

export type LazyCommand = CommandModule<object, Record<string, unknown>>;

/** Flags src/cli.ts declares for every verb. */
interface GlobalFlags {
  verbose?: boolean;
}

/** The names of a command's `<required>` positionals: yargs refuses the command without them. */
type RequiredPositionals<C extends string> = C extends `${string}<${infer Name}>${infer Rest}` ? Name | RequiredPositionals<Rest> : never;

type PositionalTypes<C extends string, P extends Record<string, PositionalOptions>> = {
  [K in keyof P]: K extends RequiredPositionals<C> ? NonNullable<InferredOptionType<P[K]>> : InferredOptionType<P[K]>;
};

type OptionTypes<O extends Record<string, Options>> = { [K in keyof O]: InferredOptionType<O[K]> };

/** What a verb's handler receives, inferred from its declaration. */
export type ArgsOf<C extends string, P extends Record<string, PositionalOptions>, O extends Record<string, Options>> = ArgumentsCamelCase<
  PositionalTypes<C, P> & OptionTypes<O>
> &
  GlobalFlags;

interface CommandDeclaration<C extends string, P extends Record<string, PositionalOptions>, O extends Record<string, Options>> {
  command: C;
  aliases?: readonly string[];
  describe: string | false;
  positionals?: P;
  options?: O;
  /** What an options object cannot say: an alias of a global flag, subcommands. */
  extend?: (y: Argv) => Argv;
  handler: (argv: ArgsOf<C, P, O>) => void | Promise<void>;
}

/** A verb from its declaration; the options keep their order, which is --help's order. */
export function command<
  const C extends string,
  const P extends Record<string, PositionalOptions> = Record<never, PositionalOptions>,
  const O extends Record<string, Options> = Record<never, Options>,
>(d: CommandDeclaration<C, P, O>): LazyCommand {
  return {
    command: d.command,
    ...(d.aliases !== undefined ? { aliases: d.aliases } : {}),
    describe: d.describe,
    builder: (y) => {
      for (const [name, positional] of Object.entries(d.positionals ?? {})) y.positional(name, positional);
      const declared = y.options(d.options ?? {});
      return d.extend ? d.extend(declared) : declared;
    },
    // The one place argv meets its type: yargs built it from exactly these declarations.
    handler: (argv) => d.handler(argv as ArgsOf<C, P, O>),
  };
}

/** `bootc image …` subcommands; other image verbs (e.g. build-disk) join this list. */
export const imageCommands: LazyCommand[] = [
  command({
    command: 'inspect <image>',
    describe: 'Show an image\'s manifest digest, config digest, architecture, version, created date and layers',
    positionals: { image: { type: 'string', describe: 'Image reference, e.g. quay.io/example/os:latest or oci:/path/layout:tag' } },
    options: {
      platform: { type: 'string', describe: 'Platform to choose from a multi-arch image (os/arch[/variant]); default: this machine' },
      format: { choices: ['humanreadable', 'json'], default: 'humanreadable', describe: 'Output format' },
    },
    handler: async (argv) => {
      const { runImageInspect } = await import('./image.js');
      await runImageInspect(argv);
    },
  }),
  command({
    command: 'build-disk <image>',
    describe: 'Build a bootable disk image (qcow2, raw, vmdk, vhd) or an installer ISO from a container image, without loop devices or mounts (needs root)',
    positionals: { image: { type: 'string', describe: 'Image reference, any transport (registry, oci:, oci-archive:, docker-archive:, containers-storage:)' } },
    options: {
      // No yargs default: with one, a bare trailing `--type` would silently mean qcow2.
      type: repeatable('Disk image type (default qcow2), or iso for an installer medium; repeat for several', ['qcow2', 'raw', 'vmdk', 'vhd', 'iso']),
      rootfs: { choices: ['ext4', 'btrfs', 'xfs'], describe: 'Root filesystem type (default: the image\'s install config [install.filesystem.root] type, else ext4); xfs is refused here: it needs a loop device' },
      size: { type: 'string', describe: 'Disk size, e.g. 10G or "20 GiB" (default: what the image needs plus room to grow)' },
      // requiresArg: without it yargs takes a lone `-` for a positional (stdin) and leaves --config empty.
      config: { type: 'string', requiresArg: true, describe: 'bootc-image-builder config.toml or config.json (users, kernel append, root minsize); - reads JSON from stdin' },
      output: { type: 'string', default: '.', describe: 'Output directory (qcow2/disk.qcow2, image/disk.raw, vmdk/disk.vmdk, vpc/disk.vhd, bootiso/install.iso)' },
      karg: repeatable('Kernel argument to add (after the image\'s kargs.d and bib\'s defaults; for an ISO: of the live system only); repeat for several'),
      'installer-answers': { type: 'string', requiresArg: true, describe: 'ISO: an answers file the interactive installer saved; the medium installs with no input and powers off (or reboots, as the file says)' },
      'default-kernel-args': {
        type: 'boolean',
        default: true,
        describe: 'Add bootc-image-builder\'s console=tty0 console=ttyS0 (a serial console); --no-default-kernel-args leaves them out',
      },
      uki: { type: 'boolean', default: false, describe: 'Boot a unified kernel image in EFI/Linux/ (automatic when the image ships one)' },
      bootloader: {
        choices: ['grub', 'grub-cc', 'systemd', 'none', 'hybrid'],
        describe: 'hybrid: systemd-boot for UEFI and GRUB for BIOS (default on x86_64 without a UKI); systemd: UEFI only (default otherwise); the others are refused',
      },
      'sign-key': { type: 'string', describe: 'Secure Boot: PEM private key to sign the UKI and systemd-boot with (sbsign)' },
      'sign-cert': { type: 'string', describe: 'Secure Boot: PEM certificate matching --sign-key' },
      stateroot: { type: 'string', describe: 'Stateroot name of the deployment (default: the image\'s install config, else "default")' },
      'target-imgref': { type: 'string', describe: 'Image the installed system follows for updates (default: IMAGE)' },
      store: { type: 'string', default: '/var/cache/bootc/store', describe: 'Blob store for pulled images, kept between builds' },
      'work-dir': { type: 'string', default: '/var/tmp', describe: 'Where the root filesystem is staged (needs room for the image)' },
      platform: { type: 'string', describe: 'Platform to build for from a multi-arch image (os/arch[/variant])' },
      force: { type: 'boolean', default: false, describe: 'Replace existing output files' },
      'signature-policy': { type: 'string', requiresArg: true, describe: 'Signature policy file to use instead of /etc/containers/policy.json' },
      quiet: { type: 'boolean', default: false, describe: 'No progress output' },
      'progress-fd': { type: 'number', describe: 'Write progress as JSON lines to this file descriptor' },
    },
    handler: async (argv) => {
      const { runBuildDisk } = await import('./build-disk.js');
      await runBuildDisk(argv);
    },
  }),
];

/** `bootc install …` subcommands. A bare `bootc install` is left for the interactive installer. */
export const installCommands: LazyCommand[] = [
  command({
    command: 'to-disk [device]',
    describe: 'Install the image onto a whole disk (or a disk image file with --via-loopback), erasing it (needs root)',
    positionals: { device: { type: 'string', describe: 'The disk, e.g. /dev/vdb; with --via-loopback a disk image file (default: the disk --config selects)' } },
    options: {
      // The install options table (src/install/options.ts): these flags, the answers file, the installer's fields.
      ...installFlags('to-disk'),
    },
    handler: async (argv) => {
      const { runInstallToDisk } = await import('./install.js');
      await runInstallToDisk(argv);
    },
  }),
  command({
    command: 'to-filesystem <root-path>',
    describe: 'Install the image onto a root filesystem you prepared and mounted, with an existing ESP (needs root)',
    positionals: { 'root-path': { type: 'string', describe: 'Mount point of the prepared root filesystem' } },
    options: {
      ...installFlags('to-filesystem'),
    },
    handler: async (argv) => {
      const { runInstallToFilesystem } = await import('./install.js');
      await runInstallToFilesystem(argv);
    },
  }),
  command({
    command: 'print-configuration',
    describe: 'Print the merged install configuration (bootc/install/*.toml of the image and this host) as JSON',
    options: {
      all: { type: 'boolean', default: false, describe: 'Also print kargs and karg-deletes' },
      'source-imgref': { type: 'string', describe: 'Read the image\'s configuration from this image (any transport); default: this system' },
      store: { type: 'string', describe: 'Blob store for pulled images (default /var/cache/bootc/store)' },
    },
    handler: async (argv) => {
      const { runPrintConfiguration } = await import('./install.js');
      await runPrintConfiguration(argv);
    },
  }),
];

/** `bootc container …`: run inside an image build, against its root filesystem. */
export const containerCommands: LazyCommand[] = [
  command({
    command: 'lint',
    describe: 'Check that the image is bootable and updatable by bootc (run as the last build step)',
    options: {
      rootfs: { type: 'string', default: '/', describe: 'Root of the image to check' },
      'fatal-warnings': { type: 'boolean', default: false, describe: 'Fail on warnings too' },
      skip: repeatable('Skip the lint NAME; repeat for several'),
      list: { type: 'boolean', default: false, describe: 'List the lints (YAML) and exit' },
      'no-truncate': { type: 'boolean', default: false, describe: 'Show every offending path, not the first 5' },
    },
    handler: async (argv) => {
      const { runLint } = await import('./container.js');
      await runLint(argv);
    },
  }),
  command({
    command: 'inspect',
    describe: 'Show the image\'s kernel (plain or UKI) and its kargs.d kernel arguments',
    options: {
      rootfs: { type: 'string', default: '/', describe: 'Root of the image' },
      format: { choices: ['humanreadable', 'yaml', 'json'], describe: 'Output format (default humanreadable)' },
      json: { type: 'boolean', default: false, describe: 'Same as --format json' },
    },
    handler: async (argv) => {
      const { runContainerInspect } = await import('./container.js');
      await runContainerInspect(argv);
    },
  }),
  command({
    command: 'ukify',
    describe: 'Build a Unified Kernel Image from the image\'s kernel, initramfs, os-release and kargs.d',
    options: {
      rootfs: { type: 'string', default: '/', describe: 'Root of the image' },
      karg: repeatable('Kernel argument to add after kargs.d; repeat for several'),
      output: { type: 'string', demandOption: true, describe: 'The UKI file to write' },
      'sign-key': { type: 'string', describe: 'PEM private key to sign the UKI with (sbsign)' },
      'sign-cert': { type: 'string', describe: 'PEM certificate matching --sign-key' },
      stub: { type: 'string', describe: 'systemd-stub to use (default: the image\'s, else the host\'s)', hidden: true },
      splash: { type: 'string', describe: 'Boot splash image (BMP) for the .splash section', hidden: true },
    },
    handler: async (argv) => {
      const { runUkify } = await import('./container.js');
      await runUkify(argv);
    },
  }),
];

/** Hidden `bootc internals …`: tools for debugging, not a stable interface. */
export const internalsCommands: LazyCommand[] = [
  command({
    command: 'pin <deployment>',
    describe: 'Keep a deployment through updates (like `ostree admin pin`): booted, rollback or STATEROOT/ID',
    positionals: { deployment: { type: 'string', demandOption: true, describe: 'booted, rollback, or STATEROOT/ID as `bootc status -v` shows it' } },
    options: { unpin: { type: 'boolean', default: false, describe: 'Let updates remove it again' } },
    handler: async (argv) => {
      const { runPin } = await import('./pin.js');
      await runPin(argv);
    },
  }),
  command({
    command: 'finalize-staged',
    describe: 'Finalize the staged deployment (/etc merge, boot entry); run at shutdown by bootc-finalize-staged.service',
    handler: async () => {
      const { runFinalizeStaged } = await import('./upgrade.js');
      await runFinalizeStaged();
    },
  }),
  {
    command: 'uki <command>',
    describe: 'Inspect Unified Kernel Images',
    builder: (y) =>
      y
        .command(
          command({
            command: 'inspect <file>',
            describe: 'List the PE sections of a UKI (name, address, size)',
            positionals: { file: { type: 'string', demandOption: true } },
            options: { json: { type: 'boolean', default: false } },
            handler: async (argv) => {
              const { runUkiInspect } = await import('./container.js');
              await runUkiInspect(argv);
            },
          }),
        )
        .command(
          command({
            command: 'extract <file> <section> <output>',
            describe: 'Write one section of a UKI (e.g. .cmdline) to a file',
            positionals: { file: { type: 'string', demandOption: true }, section: { type: 'string', demandOption: true }, output: { type: 'string', demandOption: true } },
            handler: async (argv) => {
              const { runUkiExtract } = await import('./container.js');
              await runUkiExtract(argv);
            },
          }),
        )
        .demandCommand(1),
    handler: () => undefined,
  },
];

export const commands: LazyCommand[] = [
  {
    command: 'image <command>',
    describe: 'Operations on bootable container images',
    builder: (y) => {
      for (const cmd of imageCommands) y.command(cmd);
      return y.demandCommand(1);
    },
    handler: () => undefined,
  },
  command({
    command: 'status',
    describe: 'Show the staged, booted and rollback images',
    options: {
      format: { choices: ['humanreadable', 'yaml', 'json'], describe: 'Output format (default: humanreadable on a terminal, else yaml)' },
      'format-version': { type: 'number', describe: 'Document version (0 and 1 both mean v1)' },
      booted: { type: 'boolean', describe: 'Only the booted deployment' },
      json: { type: 'boolean', hidden: true, describe: 'Same as --format json' },
    },
    extend: (y) => y.alias('v', 'verbose'),
    handler: async (argv) => {
      const { runStatus } = await import('./status.js');
      await runStatus(argv);
    },
  }),
  command({
    command: 'upgrade',
    aliases: ['update'],
    describe: 'Download and stage an update of the booted image; it is applied at the next reboot',
    options: {
      tag: { type: 'string', requiresArg: true, describe: 'Follow another tag of the same image from now on (e.g. --tag v2), as `bootc switch` with the tag replaced' },
      check: { type: 'boolean', default: false, describe: 'Only fetch the manifest and config and say whether an update is available' },
      apply: { type: 'boolean', default: false, describe: 'Reboot into the update once it is staged' },
      'download-only': { type: 'boolean', default: false, describe: 'Download and stage the update, but do not apply it at the next shutdown' },
      'from-downloaded': { type: 'boolean', default: false, describe: 'Apply the update staged by --download-only at the next reboot (no download)' },
      quiet: { type: 'boolean', default: false, describe: 'No progress output' },
      store: { type: 'string', hidden: true, describe: 'Blob store for pulled images (default /var/cache/bootc/store)' },
      'progress-fd': { type: 'number', hidden: true, describe: 'Write progress as JSON lines to this file descriptor' },
    },
    handler: async (argv) => {
      const { runUpgrade } = await import('./upgrade.js');
      await runUpgrade(argv);
    },
  }),
  command({
    command: 'switch <target>',
    describe: 'Follow another image from now on: download and stage it; it boots at the next reboot',
    positionals: { target: { type: 'string', demandOption: true, describe: 'The image to follow, e.g. quay.io/example/os:latest' } },
    options: {
      transport: { type: 'string', default: 'registry', describe: 'Transport of TARGET: registry, oci, oci-archive, docker-archive, containers-storage' },
      apply: { type: 'boolean', default: false, describe: 'Reboot into the new image once it is staged' },
      retain: { type: 'boolean', default: false, describe: 'Keep the booted image in the store after its deployment is gone (switching back fetches nothing)' },
      'enforce-container-sigpolicy': { type: 'boolean', default: false, describe: 'Refuse TARGET unless the signature policy (/etc/containers/policy.json) requires it to be signed' },
      quiet: { type: 'boolean', default: false, describe: 'No progress output' },
      store: { type: 'string', hidden: true, describe: 'Blob store for pulled images (default /var/cache/bootc/store)' },
      'progress-fd': { type: 'number', hidden: true, describe: 'Write progress as JSON lines to this file descriptor' },
    },
    handler: async (argv) => {
      const { runSwitch } = await import('./upgrade.js');
      await runSwitch(argv);
    },
  }),
  command({
    command: 'edit',
    describe: 'Apply a changed host specification (spec.image: switch; spec.bootOrder: rollback); opens $EDITOR without -f',
    options: {
      filename: { alias: 'f', type: 'string', describe: 'A BootcHost document (YAML or JSON) to apply; - for stdin' },
      quiet: { type: 'boolean', default: false, describe: 'No progress output' },
    },
    handler: async (argv) => {
      const { runEdit } = await import('./edit.js');
      await runEdit(argv);
    },
  }),
  command({
    command: 'rollback',
    describe: 'Boot the rollback deployment next (run again to undo); drops a staged update',
    options: { apply: { type: 'boolean', default: false, describe: 'Reboot right away' } },
    handler: async (argv) => {
      const { runRollback } = await import('./rollback.js');
      await runRollback(argv);
    },
  }),
  command({
    command: 'usr-overlay',
    aliases: ['usroverlay'],
    describe: 'Mount a writable overlay on /usr whose changes are discarded at the next boot',
    options: { 'read-only': { type: 'boolean', default: false, describe: 'Mount the overlay read-only (remount it read/write when needed)' } },
    handler: async (argv) => {
      const { mountUsrOverlay } = await import('../updates/usr-overlay.js');
      process.stdout.write(await mountUsrOverlay({ readOnly: argv.readOnly }));
    },
  }),
  command({
    command: 'install',
    describe: 'Install a bootable container image onto a disk or a prepared filesystem; with no subcommand on a terminal, the interactive installer',
    options: {
      plain: { type: 'boolean', default: false, global: false, describe: 'Interactive installer: no colours (also with NO_COLOR)' },
      'source-imgref': { type: 'string', global: false, describe: 'Interactive installer: the image offered first' },
      'target-imgref': { type: 'string', global: false, describe: 'Interactive installer: the image the installed system follows for updates (default: the image installed)' },
      store: { type: 'string', default: '/var/cache/bootc/store', global: false, describe: 'Blob store for pulled images, kept between runs' },
      'log-file': { type: 'string', global: false, describe: 'Interactive installer: where the full log is written (default /var/log/bootc-install-<time>.log)' },
    },
    extend: (y) => {
      for (const cmd of installCommands) y.command(cmd);
      return y;
    },
    handler: async (argv) => {
      const { launchInteractiveInstall } = await import('../tui/launch.js');
      await launchInteractiveInstall(argv);
    },
  }),
  {
    command: 'container <command>',
    describe: 'Operations inside a bootable container image build',
    builder: (y) => {
      for (const cmd of containerCommands) y.command(cmd);
      return y.demandCommand(1);
    },
    handler: () => undefined,
  },
  {
    command: 'internals <command>',
    describe: false,
    builder: (y) => {
      for (const cmd of internalsCommands) y.command(cmd);
      return y.demandCommand(1);
    },
    handler: () => undefined,
  },
];

export function registerAll(y: Argv): Argv {
  for (const cmd of commands) y.command(cmd);
  return y;
}
