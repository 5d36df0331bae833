/**
 * `bootc container …` (run inside an image build) and the hidden `bootc internals uki …`:
 * parse flags, call src/container or src/uki, print.
 */
import { resolve } from 'node:path';
import { UserError } from '../core/errors.js';
import { UsageError } from '../core/handler.js';
import { hostRustArch, kargsFromKargsD, loadKargsD } from '../boot/kargs.js';
import { buildTreeUki } from '../boot/tree-uki.js';
import { lintRootfs, renderLintList } from '../container/lint.js';
import { inspectContainer, renderContainerInspection, type ContainerInspectFormat } from '../container/inspect.js';
import { extractSection, inspectUki, renderInspection, signingKeyFromFlags } from '../uki/uki.js';

type Write = (text: string) => void;
const stdout: Write = (t) => process.stdout.write(t);

export interface LintArgs {
  rootfs: string;
  fatalWarnings: boolean;
  skip: string[];
  list: boolean;
  noTruncate: boolean;
}

export async function runLint(args: LintArgs, write: Write = stdout): Promise<void> {
  if (args.list) {
    write(renderLintList());
    return;
  }
  await lintRootfs(args.rootfs, { fatalWarnings: args.fatalWarnings, skip: args.skip, noTruncate: args.noTruncate }, write);
}

export interface ContainerInspectArgs {
  rootfs: string;
  format?: string;
  json: boolean;
}

export async function runContainerInspect(args: ContainerInspectArgs, write: Write = stdout): Promise<void> {
  const format = (args.json ? 'json' : (args.format ?? 'humanreadable')) as ContainerInspectFormat;
  if (!['humanreadable', 'yaml', 'json'].includes(format)) {
    throw new UserError(`unknown --format "${format}"`, { hint: 'use humanreadable, yaml or json' });
  }
  write(renderContainerInspection(await inspectContainer(args.rootfs), format));
}

export interface UkifyArgs {
  rootfs: string;
  karg: string[];
  output: string;
  signKey?: string;
  signCert?: string;
  stub?: string;
  splash?: string;
}

/**
 * The command line is `rw` (unless a karg says `ro`), the image's kargs.d, --karg, and the
 * deployment selector of the rootfs (src/uki/selector.ts): the deployment id and the
 * root filesystem are not known at build time, so install records which deployment has
 * this /usr tree and prepare-root finds it from the selector. With no `root=` the initrd
 * finds the root partition by its GPT type (systemd-gpt-auto-generator), as our disks
 * use the Discoverable Partitions type for it. Run it as the last step that changes /usr.
 */
export async function runUkify(args: UkifyArgs): Promise<void> {
  // yargs reports a missing demanded option but still runs the handler
  if (typeof args.output !== 'string' || args.output === '') throw new UsageError('Missing required argument: output');
  const signing = signingKeyFromFlags(args);
  const rootfs = resolve(args.rootfs);
  const { DEPLOY_SELECTOR_KARG, selectorOfDirectory } = await import('../uki/selector.js');
  const imageKargs = [...kargsFromKargsD(await loadKargsD(rootfs), hostRustArch()), ...args.karg];
  const kargs = [
    ...(imageKargs.includes('ro') ? [] : ['rw']),
    ...imageKargs.filter((k) => !k.startsWith(`${DEPLOY_SELECTOR_KARG}=`)),
    `${DEPLOY_SELECTOR_KARG}=${await selectorOfDirectory(rootfs)}`,
  ];
  await buildTreeUki({
    rootfs,
    cmdline: kargs.join(' '),
    output: resolve(args.output),
    ...(args.stub !== undefined ? { stub: args.stub } : {}),
    ...(args.splash !== undefined ? { splash: args.splash } : {}),
    ...(signing ? { signing } : {}),
  });
}

export async function runUkiInspect(args: { file: string; json: boolean }, write: Write = stdout): Promise<void> {
  const inspection = await inspectUki(args.file);
  write(args.json ? JSON.stringify(inspection, null, 2) + '\n' : renderInspection(inspection));
}

export async function runUkiExtract(args: { file: string; section: string; output: string }): Promise<void> {
  await extractSection(args.file, args.section, args.output);
}
