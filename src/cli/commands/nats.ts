/**
 * `smartspec nats status | stop`: the data folder's embedded nats-server.
 * `stop` only stops a server no live command uses (it names them otherwise):
 * a server must never go away under a command.
 */
import { dataDir } from '../../nats/embedded.js';
import { serverStatus, stopUnusedServer } from '../../nats/sharedServer.js';
import { InvalidInputError } from '../../errors.js';
import type { CommandRun } from '../commandTable.js';
import { err, out } from '../io.js';

export const nats: CommandRun = async ({ args }) => natsCommand(args[0], out, err);

export async function natsCommand(sub: string | undefined, out: (s: string) => void, err: (s: string) => void, env = process.env): Promise<number> {
  const dir = dataDir(env);
  if (env.NATS_URL) out(`NATS_URL is set (${env.NATS_URL}): commands use that, not the embedded server of ${dir}`);
  switch (sub) {
    case 'status': {
      const { server, answering, users } = await serverStatus(dir);
      if (!server) {
        out(`embedded nats-server of ${dir}: not running`);
        return 0;
      }
      out(`embedded nats-server of ${dir}: ${answering ? 'running' : 'NOT ANSWERING'} at ${server.url} (pid ${server.pid}, since ${server.startedAt})`);
      if (users.length === 0) out('no command uses it: the next command to end stops it, or smartspec nats stop');
      for (const u of users) out(`  used by pid ${u.pid}: ${u.command} (since ${u.since})`);
      return 0;
    }
    case 'stop': {
      const { stopped, users } = await stopUnusedServer(dir);
      if (users.length > 0) {
        err(`error: not stopped: in use by ${users.map((u) => `pid ${u.pid} (${u.command})`).join(', ')}; it stops by itself when the last of them ends`);
        return 1;
      }
      out(stopped ? `stopped the embedded nats-server of ${dir} (pid ${stopped.pid})` : `no embedded nats-server of ${dir} runs`);
      return 0;
    }
    default:
      throw new InvalidInputError(`usage: smartspec nats status | smartspec nats stop`);
  }
}
