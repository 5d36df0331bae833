/** `bootc status [--format humanreadable|yaml|json] [--json]`: the booted image, as upstream shows it. */
import { UserError } from '../core/errors.js';
import { loadHostStatus, renderStatus, type StatusFormat } from '../updates/status.js';

export interface StatusArgs {
  format?: string;
  formatVersion?: number;
  json?: boolean;
}

export async function runStatus(args: StatusArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (args.formatVersion !== undefined && args.formatVersion !== 0 && args.formatVersion !== 1) {
    throw new UserError(`Unsupported format version: ${args.formatVersion}`, { hint: 'use --format-version 1' });
  }
  // Upstream: human-readable on a terminal, YAML otherwise.
  const format = (args.json ? 'json' : (args.format ?? (process.stdout.isTTY ? 'humanreadable' : 'yaml'))) as StatusFormat;
  out.write(renderStatus(await loadHostStatus(), format));
}
