/** `bootc rollback [--apply]`: the next boot uses the rollback deployment (or, run again, the current one). */
import { rollback } from '../updates/rollback.js';
import { reboot } from './upgrade.js';

export interface RollbackArgs {
  apply: boolean;
}

export async function runRollback(args: RollbackArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const outcome = await rollback({ command: ['bootc', 'rollback', ...process.argv.slice(3)].join(' ') });
  out.write(outcome.text);
  if (args.apply) await reboot();
}
