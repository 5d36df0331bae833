/**
 * The verbs of the CLI. Each entry declares its flags (needed for --help) and imports its
 * implementation only when it runs, so `bootc status` never loads the installer's UI.
 * A verb is listed here only once it works end to end.
 */
import type { Argv, CommandModule } from 'yargs';

export type LazyCommand = CommandModule<object, Record<string, unknown>>;

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
    describe: 'Build a bootable disk image (qcow2, raw, vmdk, vhd) from a container image, without loop devices or mounts (needs root)',
    builder: (y) =>
      y
        .positional('image', { type: 'string', describe: 'Image reference, any transport (registry, oci:, oci-archive:, docker-archive:, containers-storage:)' })
        .option('type', { type: 'string', array: true, choices: ['qcow2', 'raw', 'vmdk', 'vhd'], default: ['qcow2'], describe: 'Disk image type; repeat for several' })
        .option('rootfs', { choices: ['ext4', 'btrfs', 'xfs'], describe: 'Root filesystem type (default ext4)' })
        .option('size', { type: 'string', describe: 'Disk size, e.g. 10G or "20 GiB" (default: what the image needs plus room to grow)' })
        .option('config', { type: 'string', describe: 'bootc-image-builder config.toml or config.json (users, kernel append, root minsize)' })
        .option('output', { type: 'string', default: '.', describe: 'Output directory (qcow2/disk.qcow2, image/disk.raw, vmdk/disk.vmdk, vpc/disk.vhd)' })
        .option('karg', { type: 'string', array: true, default: [], describe: 'Kernel argument to add; repeat for several' })
        .option('stateroot', { type: 'string', default: 'default', describe: 'Stateroot name of the deployment' })
        .option('target-imgref', { type: 'string', describe: 'Image the installed system follows for updates (default: IMAGE)' })
        .option('store', { type: 'string', default: '/var/cache/bootc/store', describe: 'Blob store for pulled images, kept between builds' })
        .option('work-dir', { type: 'string', default: '/var/tmp', describe: 'Where the root filesystem is staged (needs room for the image)' })
        .option('platform', { type: 'string', describe: 'Platform to build for from a multi-arch image (os/arch[/variant])' })
        .option('force', { type: 'boolean', default: false, describe: 'Replace existing output files' })
        .option('quiet', { type: 'boolean', default: false, describe: 'No progress output' })
        .option('progress-fd', { type: 'number', describe: 'Write progress as JSON lines to this file descriptor' }),
    handler: async (argv) => {
      const { runBuildDisk } = await import('./build-disk.js');
      await runBuildDisk(argv as unknown as import('./build-disk.js').BuildDiskArgs);
    },
  },
];

/** `bootc install …` subcommands. A bare `bootc install` is left for the interactive installer. */
export const installCommands: LazyCommand[] = [
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
    command: 'install <command>',
    describe: 'Install a bootable container image onto a disk or a prepared filesystem',
    builder: (y) => {
      for (const cmd of installCommands) y.command(cmd);
      return y.demandCommand(1);
    },
    handler: () => undefined,
  },
];

export function registerAll(y: Argv): Argv {
  for (const cmd of commands) y.command(cmd);
  return y;
}
