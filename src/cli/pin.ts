/** `bootc internals pin [--unpin] DEPLOYMENT`. */
import { setPinned } from '../updates/pin.js';

export interface PinArgs {
  deployment: string;
  unpin: boolean;
}

export async function runPin(args: PinArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  out.write(await setPinned(args.deployment, !args.unpin, { command: ['bootc', ...process.argv.slice(2)].join(' ') }));
}
