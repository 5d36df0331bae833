/**
 * `bootc container …` (run inside an image build) and the hidden `bootc internals uki …`:
 * parse flags, call src/container or src/uki, print.
 */
import { resolve } from 'node:path';
import { UserError } from '../core/errors.js';
import { UsageError } from './handler.js';
import { hostRustArch, kargsFromKargsD, loadKargsD } from '../boot/kargs.js';
import { lintRootfs, renderLintList } from '../container/lint.js';
import { inspectContainer, renderContainerInspection, type ContainerInspectFormat } from '../container/inspect.js';
import { buildUki, extractSection, inspectUki, renderInspection } from '../uki/uki.js';

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
 * The command line is the image's kargs.d plus --karg. The root and deployment arguments
 * (`root=UUID=…`, `bootc.deploy=…`) are not known at build time: a UKI built here boots
 * a deployment only once a deployment selector computed from the image exists (issue 7).
 */
export async function runUkify(args: UkifyArgs): Promise<void> {
  // yargs reports a missing demanded option but still runs the handler
  if (typeof args.output !== 'string' || args.output === '') throw new UsageError('Missing required argument: output');
  if ((args.signKey === undefined) !== (args.signCert === undefined)) {
    throw new UserError('--sign-key and --sign-cert go together', { hint: 'pass both to sign the UKI, or neither' });
  }
  const rootfs = resolve(args.rootfs);
  const kargs = [...kargsFromKargsD(await loadKargsD(rootfs), hostRustArch()), ...args.karg];
  await buildUki({
    rootfs,
    cmdline: kargs.join(' '),
    output: resolve(args.output),
    ...(args.stub !== undefined ? { stub: args.stub } : {}),
    ...(args.splash !== undefined ? { splash: args.splash } : {}),
    ...(args.signKey !== undefined && args.signCert !== undefined ? { signing: { key: args.signKey, cert: args.signCert } } : {}),
  });
}

export async function runUkiInspect(args: { file: string; json: boolean }, write: Write = stdout): Promise<void> {
  const inspection = await inspectUki(args.file);
  write(args.json ? JSON.stringify(inspection, null, 2) + '\n' : renderInspection(inspection));
}

export async function runUkiExtract(args: { file: string; section: string; output: string }): Promise<void> {
  await extractSection(args.file, args.section, args.output);
}
