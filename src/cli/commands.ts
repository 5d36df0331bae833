/**
 * The verbs of the CLI. Each entry declares its flags (needed for --help) and imports its
 * implementation only when it runs, so `bootc status` never loads the installer's UI.
 * A verb is listed here only once it works end to end.
 */
import type { Argv, CommandModule } from 'yargs';

export type LazyCommand = CommandModule<object, Record<string, unknown>>;

/**
 * A flag given once per value, as upstream's clap flags are: `--karg a --karg b`. Exactly
 * one value each (nargs 1), so `--karg quiet /mnt/target` leaves the positional alone.
 */
export function repeatable(describe: string, choices?: readonly string[]) {
  return { type: 'string', array: true, nargs: 1, requiresArg: true, default: [], describe, ...(choices ? { choices } : {}) } as const;
}

/** `bootc image …` subcommands; other image verbs (e.g. build-disk) join this list. */
export const imageCommands: LazyCommand[] = [
  {
    command: 'inspect <image>',
    describe: 'Show an image\'s manifest digest, config digest, architecture, version, created date and layers',
    builder: (y) =>
      y
        .positional('image', { type: 'string', describe: 'Image reference, e.g. quay.io/example/os:latest or oci:/path/layout:tag' })
        .option('platform', { type: 'string', describe: 'Platform to choose from a multi-arch image (os/arch[/variant]); default: this machine' })
        .option('format', { choices: ['humanreadable', 'json'], default: 'humanreadable', describe: 'Output format' }),
    handler: async (argv) => {
      const { runImageInspect } = await import('./image.js');
      await runImageInspect(argv as unknown as import('./image.js').InspectArgs);
    },
  },
  {
    command: 'build-disk <image>',
    describe: 'Build a bootable disk image (qcow2, raw, vmdk, vhd) or an installer ISO from a container image, without loop devices or mounts (needs root)',
    builder: (y) =>
      y
        .positional('image', { type: 'string', describe: 'Image reference, any transport (registry, oci:, oci-archive:, docker-archive:, containers-storage:)' })
        // No yargs default: with one, a bare trailing `--type` would silently mean qcow2.
        .option('type', repeatable('Disk image type (default qcow2), or iso for an installer medium; repeat for several', ['qcow2', 'raw', 'vmdk', 'vhd', 'iso']))
        .option('rootfs', { choices: ['ext4', 'btrfs', 'xfs'], describe: 'Root filesystem type (default: the image\'s install config [install.filesystem.root] type, else ext4); xfs is refused here: it needs a loop device' })
        .option('size', { type: 'string', describe: 'Disk size, e.g. 10G or "20 GiB" (default: what the image needs plus room to grow)' })
        // requiresArg: without it yargs takes a lone `-` for a positional (stdin) and leaves --config empty.
        .option('config', { type: 'string', requiresArg: true, describe: 'bootc-image-builder config.toml or config.json (users, kernel append, root minsize); - reads JSON from stdin' })
        .option('output', { type: 'string', default: '.', describe: 'Output directory (qcow2/disk.qcow2, image/disk.raw, vmdk/disk.vmdk, vpc/disk.vhd, bootiso/install.iso)' })
        .option('karg', repeatable('Kernel argument to add (after the image\'s kargs.d and bib\'s defaults; for an ISO: of the live system only); repeat for several'))
        .option('installer-answers', { type: 'string', requiresArg: true, describe: 'ISO: an answers file the interactive installer saved; the medium installs with no input and powers off (or reboots, as the file says)' })
        .option('default-kernel-args', {
          type: 'boolean',
          default: true,
          describe: 'Add bootc-image-builder\'s console=tty0 console=ttyS0 (a serial console); --no-default-kernel-args leaves them out',
        })
        .option('uki', { type: 'boolean', default: false, describe: 'Boot a unified kernel image in EFI/Linux/ (automatic when the image ships one)' })
        .option('bootloader', {
          choices: ['grub', 'grub-cc', 'systemd', 'none', 'hybrid'],
          describe: 'hybrid: systemd-boot for UEFI and GRUB for BIOS (default on x86_64 without a UKI); systemd: UEFI only (default otherwise); the others are refused',
        })
        .option('sign-key', { type: 'string', describe: 'Secure Boot: PEM private key to sign the UKI and systemd-boot with (sbsign)' })
        .option('sign-cert', { type: 'string', describe: 'Secure Boot: PEM certificate matching --sign-key' })
        .option('stateroot', { type: 'string', describe: 'Stateroot name of the deployment (default: the image\'s install config, else "default")' })
        .option('target-imgref', { type: 'string', describe: 'Image the installed system follows for updates (default: IMAGE)' })
        .option('store', { type: 'string', default: '/var/cache/bootc/store', describe: 'Blob store for pulled images, kept between builds' })
        .option('work-dir', { type: 'string', default: '/var/tmp', describe: 'Where the root filesystem is staged (needs room for the image)' })
        .option('platform', { type: 'string', describe: 'Platform to build for from a multi-arch image (os/arch[/variant])' })
        .option('force', { type: 'boolean', default: false, describe: 'Replace existing output files' })
        .option('signature-policy', { type: 'string', requiresArg: true, describe: 'Signature policy file to use instead of /etc/containers/policy.json' })
        .option('quiet', { type: 'boolean', default: false, describe: 'No progress output' })
        .option('progress-fd', { type: 'number', describe: 'Write progress as JSON lines to this file descriptor' }),
    handler: async (argv) => {
      const { runBuildDisk } = await import('./build-disk.js');
      await runBuildDisk(argv as unknown as import('./build-disk.js').BuildDiskArgs);
    },
  },
];

/** Flags both installs take: the image, how it boots, where blobs go, progress. */
function withSharedInstallOptions<T>(y: Argv<T>) {
  return y
    .option('source-imgref', { type: 'string', describe: 'The image to install, any transport (registry, oci:, oci-archive:, docker-archive:, containers-storage:)' })
    .option('target-imgref', { type: 'string', describe: 'The image the installed system follows for updates (default: the source image)' })
    .option('target-transport', { type: 'string', default: 'registry', describe: 'Transport of --target-imgref' })
    .option('karg', repeatable('Kernel argument to add (install adds no console arguments of its own); repeat for several'))
    .option('karg-delete', repeatable('Kernel argument to remove (key or key=value); repeat for several'))
    .option('uki', { type: 'boolean', default: false, describe: 'Boot a unified kernel image in EFI/Linux/ (automatic when the image ships one)' })
    .option('sign-key', { type: 'string', describe: 'Secure Boot: PEM private key to sign the UKI and systemd-boot with (sbsign)' })
    .option('sign-cert', { type: 'string', describe: 'Secure Boot: PEM certificate matching --sign-key' })
    .option('root-ssh-authorized-keys', { type: 'string', describe: 'authorized_keys file for root, installed through tmpfiles.d' })
    .option('stateroot', { type: 'string', describe: 'Stateroot name (default: install config, else "default")' })
    .option('store', { type: 'string', default: '/var/cache/bootc/store', describe: 'Blob store for pulled images, kept between runs' })
    .option('platform', { type: 'string', describe: 'Platform to choose from a multi-arch image (os/arch[/variant])' })
    .option('bootloader', { choices: ['grub', 'grub-cc', 'systemd', 'none', 'hybrid'], describe: 'hybrid: systemd-boot for UEFI and GRUB for BIOS (to-disk\'s default on x86_64 without a UKI); systemd: UEFI only (to-filesystem builds only this); the others are refused' })
    .option('bootupd-skip-boot-uuid', { type: 'boolean', describe: 'bootupd/GRUB static configs: refused (no bootupd here)' })
    .option('enforce-container-sigpolicy', { type: 'boolean', describe: 'Refuse the image unless the signature policy (containers-policy.json) requires it to be signed' })
    .option('signature-policy', { type: 'string', requiresArg: true, describe: 'Signature policy file to use instead of /etc/containers/policy.json' })
    .option('generic-image', {
      type: 'boolean',
      default: false,
      describe: 'A disk for any machine. Always in effect here: bootc never writes firmware boot variables, so every disk boots through the removable-media path (EFI/BOOT/BOOTX64.EFI)',
    })
    .option('quiet', { type: 'boolean', default: false, describe: 'No progress output' })
    .option('progress-fd', { type: 'number', describe: 'Write progress as JSON lines to this file descriptor' });
}

/** `bootc install …` subcommands. A bare `bootc install` is left for the interactive installer. */
export const installCommands: LazyCommand[] = [
  {
    command: 'to-disk [device]',
    describe: 'Install the image onto a whole disk (or a disk image file with --via-loopback), erasing it (needs root)',
    builder: (y) =>
      withSharedInstallOptions(y)
        .positional('device', { type: 'string', describe: 'The disk, e.g. /dev/vdb; with --via-loopback a disk image file (default: the disk --config selects)' })
        .option('config', { type: 'string', describe: 'Answers file saved by the interactive installer (TOML); flags given as well win' })
        .option('wipe', { type: 'boolean', default: false, describe: 'Erase existing partitions and signatures on the disk' })
        .option('filesystem', { choices: ['xfs', 'ext4', 'btrfs'], describe: 'Root filesystem (default: the image\'s install config, else ext4)' })
        .option('block-setup', { choices: ['direct', 'tpm2-luks'], describe: 'Block setup of the root: direct (the default); tpm2-luks is refused until encryption lands' })
        .option('root-size', { type: 'string', describe: 'Root partition size, e.g. 20G (bare number: MiB; default: the rest of the disk)' })
        .option('via-loopback', { type: 'boolean', default: false, describe: 'DEVICE is a disk image file: attach it to a loop device (implies --generic-image)' }),
    handler: async (argv) => {
      const { runInstallToDisk } = await import('./install.js');
      await runInstallToDisk(argv as unknown as import('./install.js').ToDiskArgs);
    },
  },
  {
    command: 'to-filesystem <root-path>',
    describe: 'Install the image onto a root filesystem you prepared and mounted, with an existing ESP (needs root)',
    builder: (y) =>
      withSharedInstallOptions(y)
        .positional('root-path', { type: 'string', describe: 'Mount point of the prepared root filesystem' })
        .option('root-mount-spec', { type: 'string', describe: 'How the root is found at boot, e.g. LABEL=root (default: UUID of the filesystem; "" omits root=)' })
        .option('boot-mount-spec', { type: 'string', describe: 'fstab source of /boot (the ESP) (default: its UUID; "" omits the line)' })
        .option('replace', { choices: ['wipe', 'alongside'], describe: 'Root is not empty: erase it (wipe) or keep its files (alongside)' })
        .option('esp', { type: 'string', describe: 'The EFI system partition (default: the one on the disk holding ROOT_PATH)' })
        .option('skip-finalize', { type: 'boolean', default: false, describe: 'Leave the filesystem writable (no fstrim, no read-only remount)' }),
    handler: async (argv) => {
      const { runInstallToFilesystem } = await import('./install.js');
      await runInstallToFilesystem(argv as unknown as import('./install.js').ToFilesystemArgs);
    },
  },
  {
    command: 'print-configuration',
    describe: 'Print the merged install configuration (bootc/install/*.toml of the image and this host) as JSON',
    builder: (y) =>
      y
        .option('all', { type: 'boolean', default: false, describe: 'Also print kargs and karg-deletes' })
        .option('source-imgref', { type: 'string', describe: 'Read the image\'s configuration from this image (any transport); default: this system' })
        .option('store', { type: 'string', describe: 'Blob store for pulled images (default /var/cache/bootc/store)' }),
    handler: async (argv) => {
      const { runPrintConfiguration } = await import('./install.js');
      await runPrintConfiguration(argv as unknown as import('./install.js').PrintConfigurationArgs);
    },
  },
];

/** `bootc container …`: run inside an image build, against its root filesystem. */
export const containerCommands: LazyCommand[] = [
  {
    command: 'lint',
    describe: 'Check that the image is bootable and updatable by bootc (run as the last build step)',
    builder: (y) =>
      y
        .option('rootfs', { type: 'string', default: '/', describe: 'Root of the image to check' })
        .option('fatal-warnings', { type: 'boolean', default: false, describe: 'Fail on warnings too' })
        .option('skip', repeatable('Skip the lint NAME; repeat for several'))
        .option('list', { type: 'boolean', default: false, describe: 'List the lints (YAML) and exit' })
        .option('no-truncate', { type: 'boolean', default: false, describe: 'Show every offending path, not the first 5' }),
    handler: async (argv) => {
      const { runLint } = await import('./container.js');
      await runLint(argv as unknown as import('./container.js').LintArgs);
    },
  },
  {
    command: 'inspect',
    describe: 'Show the image\'s kernel (plain or UKI) and its kargs.d kernel arguments',
    builder: (y) =>
      y
        .option('rootfs', { type: 'string', default: '/', describe: 'Root of the image' })
        .option('format', { choices: ['humanreadable', 'yaml', 'json'], describe: 'Output format (default humanreadable)' })
        .option('json', { type: 'boolean', default: false, describe: 'Same as --format json' }),
    handler: async (argv) => {
      const { runContainerInspect } = await import('./container.js');
      await runContainerInspect(argv as unknown as import('./container.js').ContainerInspectArgs);
    },
  },
  {
    command: 'ukify',
    describe: 'Build a Unified Kernel Image from the image\'s kernel, initramfs, os-release and kargs.d',
    builder: (y) =>
      y
        .option('rootfs', { type: 'string', default: '/', describe: 'Root of the image' })
        .option('karg', repeatable('Kernel argument to add after kargs.d; repeat for several'))
        .option('output', { type: 'string', demandOption: true, describe: 'The UKI file to write' })
        .option('sign-key', { type: 'string', describe: 'PEM private key to sign the UKI with (sbsign)' })
        .option('sign-cert', { type: 'string', describe: 'PEM certificate matching --sign-key' })
        .option('stub', { type: 'string', describe: 'systemd-stub to use (default: the image\'s, else the host\'s)', hidden: true })
        .option('splash', { type: 'string', describe: 'Boot splash image (BMP) for the .splash section', hidden: true }),
    handler: async (argv) => {
      const { runUkify } = await import('./container.js');
      await runUkify(argv as unknown as import('./container.js').UkifyArgs);
    },
  },
];

/** Hidden `bootc internals …`: tools for debugging, not a stable interface. */
export const internalsCommands: LazyCommand[] = [
  {
    command: 'pin <deployment>',
    describe: 'Keep a deployment through updates (like `ostree admin pin`): booted, rollback or STATEROOT/ID',
    builder: (y) =>
      y
        .positional('deployment', { type: 'string', demandOption: true, describe: 'booted, rollback, or STATEROOT/ID as `bootc status -v` shows it' })
        .option('unpin', { type: 'boolean', default: false, describe: 'Let updates remove it again' }),
    handler: async (argv) => {
      const { runPin } = await import('./pin.js');
      await runPin(argv as unknown as import('./pin.js').PinArgs);
    },
  },
  {
    command: 'finalize-staged',
    describe: 'Finalize the staged deployment (/etc merge, boot entry); run at shutdown by bootc-finalize-staged.service',
    handler: async () => {
      const { runFinalizeStaged } = await import('./upgrade.js');
      await runFinalizeStaged();
    },
  },
  {
    command: 'uki <command>',
    describe: 'Inspect Unified Kernel Images',
    builder: (y) =>
      y
        .command({
          command: 'inspect <file>',
          describe: 'List the PE sections of a UKI (name, address, size)',
          builder: (yy) =>
            yy.positional('file', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
          handler: async (argv) => {
            const { runUkiInspect } = await import('./container.js');
            await runUkiInspect(argv as unknown as { file: string; json: boolean });
          },
        })
        .command({
          command: 'extract <file> <section> <output>',
          describe: 'Write one section of a UKI (e.g. .cmdline) to a file',
          builder: (yy) =>
            yy
              .positional('file', { type: 'string', demandOption: true })
              .positional('section', { type: 'string', demandOption: true })
              .positional('output', { type: 'string', demandOption: true }),
          handler: async (argv) => {
            const { runUkiExtract } = await import('./container.js');
            await runUkiExtract(argv as unknown as { file: string; section: string; output: string });
          },
        })
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
  {
    command: 'status',
    describe: 'Show the staged, booted and rollback images',
    builder: (y) =>
      y
        .option('format', { choices: ['humanreadable', 'yaml', 'json'], describe: 'Output format (default: humanreadable on a terminal, else yaml)' })
        .option('format-version', { type: 'number', describe: 'Document version (0 and 1 both mean v1)' })
        .option('booted', { type: 'boolean', describe: 'Only the booted deployment' })
        .alias('v', 'verbose')
        .option('json', { type: 'boolean', hidden: true, describe: 'Same as --format json' }),
    handler: async (argv) => {
      const { runStatus } = await import('./status.js');
      await runStatus(argv as unknown as import('./status.js').StatusArgs);
    },
  },
  {
    command: 'upgrade',
    aliases: ['update'],
    describe: 'Download and stage an update of the booted image; it is applied at the next reboot',
    builder: (y) =>
      y
        .option('tag', { type: 'string', requiresArg: true, describe: 'Follow another tag of the same image from now on (e.g. --tag v2), as `bootc switch` with the tag replaced' })
        .option('check', { type: 'boolean', default: false, describe: 'Only fetch the manifest and config and say whether an update is available' })
        .option('apply', { type: 'boolean', default: false, describe: 'Reboot into the update once it is staged' })
        .option('download-only', { type: 'boolean', default: false, describe: 'Download and stage the update, but do not apply it at the next shutdown' })
        .option('from-downloaded', { type: 'boolean', default: false, describe: 'Apply the update staged by --download-only at the next reboot (no download)' })
        .option('quiet', { type: 'boolean', default: false, describe: 'No progress output' })
        .option('store', { type: 'string', hidden: true, describe: 'Blob store for pulled images (default /var/cache/bootc/store)' })
        .option('progress-fd', { type: 'number', hidden: true, describe: 'Write progress as JSON lines to this file descriptor' }),
    handler: async (argv) => {
      const { runUpgrade } = await import('./upgrade.js');
      await runUpgrade(argv as unknown as import('./upgrade.js').UpgradeArgs);
    },
  },
  {
    command: 'switch <target>',
    describe: 'Follow another image from now on: download and stage it; it boots at the next reboot',
    builder: (y) =>
      y
        .positional('target', { type: 'string', demandOption: true, describe: 'The image to follow, e.g. quay.io/example/os:latest' })
        .option('transport', { type: 'string', default: 'registry', describe: 'Transport of TARGET: registry, oci, oci-archive, docker-archive, containers-storage' })
        .option('apply', { type: 'boolean', default: false, describe: 'Reboot into the new image once it is staged' })
        .option('retain', { type: 'boolean', default: false, describe: 'Keep the booted image in the store after its deployment is gone (switching back fetches nothing)' })
        .option('enforce-container-sigpolicy', { type: 'boolean', default: false, describe: 'Refuse TARGET unless the signature policy (/etc/containers/policy.json) requires it to be signed' })
        .option('quiet', { type: 'boolean', default: false, describe: 'No progress output' })
        .option('store', { type: 'string', hidden: true, describe: 'Blob store for pulled images (default /var/cache/bootc/store)' })
        .option('progress-fd', { type: 'number', hidden: true, describe: 'Write progress as JSON lines to this file descriptor' }),
    handler: async (argv) => {
      const { runSwitch } = await import('./upgrade.js');
      await runSwitch(argv as unknown as import('./upgrade.js').SwitchArgs);
    },
  },
  {
    command: 'edit',
    describe: 'Apply a changed host specification (spec.image: switch; spec.bootOrder: rollback); opens $EDITOR without -f',
    builder: (y) =>
      y
        .option('filename', { alias: 'f', type: 'string', describe: 'A BootcHost document (YAML or JSON) to apply; - for stdin' })
        .option('quiet', { type: 'boolean', default: false, describe: 'No progress output' }),
    handler: async (argv) => {
      const { runEdit } = await import('./edit.js');
      await runEdit(argv as unknown as import('./edit.js').EditArgs);
    },
  },
  {
    command: 'rollback',
    describe: 'Boot the rollback deployment next (run again to undo); drops a staged update',
    builder: (y) => y.option('apply', { type: 'boolean', default: false, describe: 'Reboot right away' }),
    handler: async (argv) => {
      const { runRollback } = await import('./rollback.js');
      await runRollback(argv as unknown as import('./rollback.js').RollbackArgs);
    },
  },
  {
    command: 'usr-overlay',
    aliases: ['usroverlay'],
    describe: 'Mount a writable overlay on /usr whose changes are discarded at the next boot',
    builder: (y) => y.option('read-only', { type: 'boolean', default: false, describe: 'Mount the overlay read-only (remount it read/write when needed)' }),
    handler: async (argv) => {
      const { mountUsrOverlay } = await import('../updates/usr-overlay.js');
      process.stdout.write(await mountUsrOverlay({ readOnly: argv['readOnly'] === true }));
    },
  },
  {
    command: 'install',
    describe: 'Install a bootable container image onto a disk or a prepared filesystem; with no subcommand on a terminal, the interactive installer',
    builder: (y) => {
      for (const cmd of installCommands) y.command(cmd);
      return y
        .option('plain', { type: 'boolean', default: false, global: false, describe: 'Interactive installer: no colours (also with NO_COLOR)' })
        .option('source-imgref', { type: 'string', global: false, describe: 'Interactive installer: the image offered first' })
        .option('target-imgref', { type: 'string', global: false, describe: 'Interactive installer: the image the installed system follows for updates (default: the image installed)' })
        .option('store', { type: 'string', default: '/var/cache/bootc/store', global: false, describe: 'Blob store for pulled images, kept between runs' })
        .option('log-file', { type: 'string', global: false, describe: 'Interactive installer: where the full log is written (default /var/log/bootc-install-<time>.log)' });
    },
    handler: async (argv) => {
      const { launchInteractiveInstall } = await import('../tui/launch.js');
      await launchInteractiveInstall(argv as unknown as import('../tui/run.js').InteractiveInstallArgs);
    },
  },
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
