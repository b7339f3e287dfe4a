/** `smartspec serve | edge | worker`: the service, until a signal stops it (src/cli/service.ts). */
import type { CommandRun } from '../commandTable.js';
import { runService } from '../service.js';

function serving(roles: { edge: boolean; worker: boolean }): CommandRun {
  return async ({ opts }) => {
    await runService(roles, opts.insecure ? { ...process.env, SMARTSPEC_INSECURE: 'true' } : process.env);
    return new Promise<number>(() => undefined); // serves until a signal stops it
  };
}

export const serve = serving({ edge: true, worker: true });
export const edge = serving({ edge: true, worker: false });
export const worker = serving({ edge: false, worker: true });
