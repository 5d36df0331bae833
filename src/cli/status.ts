/** `bootc status [--format humanreadable|yaml|json] [--booted] [-v]`: the deployments, as upstream shows them. */
import { UserError } from '../core/errors.js';
import { loadHostStatus, onlyBooted, renderStatus, type StatusFormat } from '../updates/status.js';
import type { SysrootLocations } from '../updates/deployments.js';

export interface StatusArgs {
  format?: string;
  formatVersion?: number;
  json?: boolean;
  booted?: boolean;
  verbose?: boolean;
}

export async function runStatus(
  args: StatusArgs,
  out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
  locations: Partial<SysrootLocations> = {},
): Promise<void> {
  if (args.formatVersion !== undefined && args.formatVersion !== 0 && args.formatVersion !== 1) {
    throw new UserError(`Unsupported format version: ${args.formatVersion}`, { hint: 'use --format-version 1' });
  }
  // Upstream: human-readable on a terminal, YAML otherwise.
  const format = (args.json ? 'json' : (args.format ?? (out.isTTY ? 'humanreadable' : 'yaml'))) as StatusFormat;
  const host = await loadHostStatus(locations);
  out.write(await renderStatus(args.booted ? onlyBooted(host) : host, format, { verbose: args.verbose ?? false }));
}
