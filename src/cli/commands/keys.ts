/** `smartspec keys create | list | revoke`: API keys (only their hashes are kept). */
import { KeyStore, viewOf } from '../../auth/keys.js';
import { parseScopes, type Scope } from '../../auth/principal.js';
import { InvalidInputError } from '../../errors.js';
import type { CommandRun } from '../commandTable.js';
import { withNats } from '../connect.js';
import { out } from '../io.js';

const USAGE = 'usage: smartspec keys create --tenant T --scopes read,write | keys list | keys revoke <keyId>';

export const keys: CommandRun = async ({ args, opts }) => {
  const [action, keyId] = args;
  if (action !== 'create' && action !== 'list' && !(action === 'revoke' && keyId)) throw new InvalidInputError(USAGE);
  return withNats(async ({ nc }) => {
    const store = await KeyStore.open(nc);
    if (action === 'create') {
      if (!opts.tenant) throw new InvalidInputError('usage: smartspec keys create --tenant T --scopes read,write [--name N]');
      const scopes = parseScopesArg((opts.scopes as string | undefined) ?? '');
      const { key, record } = await store.create({ tenant: opts.tenant as string, scopes, name: opts.name as string | undefined });
      if (opts.json) out(JSON.stringify({ key, ...viewOf(record) }, null, 2));
      else out(`${key}\nkey id ${record.keyId}, tenant ${record.tenant}, scopes ${record.scopes.join(',')}\nstore the key now: it is shown only this once (only its hash is kept)`);
      return 0;
    }
    if (action === 'list') {
      const all = (await store.list()).map(viewOf);
      if (opts.json) out(JSON.stringify(all, null, 2));
      else for (const k of all) out(`${k.keyId}  ${k.tenant.padEnd(16)} ${k.scopes.join(',').padEnd(22)} ${k.createdAt}${k.revokedAt ? `  revoked ${k.revokedAt}` : ''}${k.name ? `  ${k.name}` : ''}`);
      return 0;
    }
    const revoked = await store.revoke(keyId);
    out(`key ${revoked.keyId} (tenant ${revoked.tenant}) revoked at ${revoked.revokedAt}`);
    return 0;
  });
};

function parseScopesArg(text: string): Scope[] {
  try {
    return parseScopes(text);
  } catch (err) {
    throw new InvalidInputError(`--scopes: ${(err as Error).message}`);
  }
}
