/**
 * `smartspec secrets set|list|rm`. The value of `set` is read from stdin, so
 * it never stands in the shell's history or in the process list; `list`
 * prints names only.
 */
import { InvalidInputError } from '../../errors.js';
import { checkSecretName, SecretStore } from '../../secrets/secretStore.js';
import type { CommandRun } from '../commandTable.js';
import { withNats } from '../connect.js';
import { need } from '../args.js';
import { out } from '../io.js';

export const secrets: CommandRun = async ({ args }) => {
  need(args, 1, 'secrets', 'set <NAME> (value on stdin) | list | rm <NAME>');
  return withNats(async ({ nc }) => secretsCommand(await SecretStore.open(nc), args, out));
};

export async function secretsCommand(store: SecretStore, args: string[], out: (s: string) => void): Promise<number> {
  const [verb, name] = args;
  switch (verb) {
    case 'set': {
      if (!name) throw new InvalidInputError('usage: printf %s "$VALUE" | smartspec secrets set <NAME>');
      checkSecretName(name);
      if (process.stdin.isTTY) throw new InvalidInputError(`give the value of '${name}' on stdin, e.g. printf %s "$VALUE" | smartspec secrets set ${name}`);
      const value = (await readStdin()).replace(/\r?\n$/, '');
      await store.set(name, value);
      out(`secret ${name} set`);
      return 0;
    }
    case 'list':
      for (const n of await store.list()) out(n);
      return 0;
    case 'rm': {
      if (!name) throw new InvalidInputError('usage: smartspec secrets rm <NAME>');
      if (!(await store.remove(name))) throw new InvalidInputError(`secret '${name}' is not set`);
      out(`secret ${name} removed`);
      return 0;
    }
    default:
      throw new InvalidInputError(`unknown secrets command '${verb}' (set, list, rm)`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
