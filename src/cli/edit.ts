/**
 * `bootc edit [-f FILE]`: apply a changed `BootcHost` spec. With -f, the document comes from
 * FILE (`-` for stdin); without, the current one opens in $EDITOR (default vi) and what is
 * saved is applied.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnStreaming } from '../core/exec.js';
import { UserError } from '../core/errors.js';
import { planEdit, specOf, type HostSpec } from '../updates/edit.js';
import { loadHostStatus, renderStatus } from '../updates/status.js';
import { rollback } from '../updates/rollback.js';
import { runSwitch } from './upgrade.js';

export interface EditArgs {
  filename?: string;
  quiet?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function editInEditor(current: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bootc-edit-'));
  try {
    const file = join(dir, 'host.yaml');
    await writeFile(file, current);
    const editor = process.env['VISUAL'] ?? process.env['EDITOR'] ?? 'vi';
    const { done } = spawnStreaming({
      description: `Editing the host specification with ${editor}`,
      argv: ['sh', '-c', `${editor} "$1"`, 'sh', file],
      hint: 'set $EDITOR, or give the document with `bootc edit -f FILE`',
      stdio: { stdin: 'inherit', stdout: 'inherit' },
    });
    await done;
    return await readFile(file, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runEdit(args: EditArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const host = await loadHostStatus();
  if (!host.status.booted) {
    throw new UserError('System is not deployed via bootc', { hint: 'install the system with `bootc install to-disk` first' });
  }
  const source = args.filename === undefined ? 'the edited document' : args.filename === '-' ? 'stdin' : args.filename;
  let text: string;
  if (args.filename === undefined) text = await editInEditor(await renderStatus(host, 'yaml'));
  else if (args.filename === '-') text = await readStdin();
  else {
    try {
      text = await readFile(args.filename, 'utf8');
    } catch (err) {
      throw new UserError(`cannot read ${args.filename}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        hint: 'write the document first: `bootc status --format yaml > host.yaml`',
      });
    }
  }
  const { parse } = await import('yaml');
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new UserError(`${source} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`, {
      hint: 'edit the output of `bootc status --format yaml`',
    });
  }
  const current: HostSpec = { image: host.spec.image, bootOrder: host.spec.bootOrder };
  const plan = planEdit(current, specOf(doc, source), source);
  switch (plan.kind) {
    case 'unchanged':
      out.write('Edit cancelled, no changes made.\n');
      return;
    case 'rollback':
      out.write((await rollback({ command: 'bootc edit' })).text);
      return;
    case 'switch':
      await runSwitch(
        { target: plan.image.image, transport: plan.image.transport, apply: false, quiet: args.quiet ?? false, enforceContainerSigpolicy: plan.image.signature === 'containerPolicy' },
        out,
      );
  }
}
