/**
 * The embedded server's credential: a random token made each time the data
 * folder's server starts, kept in `<data>/nats-token` readable by its owner
 * only. The server listens on loopback, but other users of the machine could
 * still reach it; without the token they cannot connect (and so cannot
 * publish a signal).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_NATS_CONF } from './server.js';

const tokenFile = (dir: string) => join(dir, 'nats-token');

/** A new token and a config (the repository's nats.conf plus the token) to start the server with. */
export async function writeEmbeddedConfig(dir: string): Promise<{ configFile: string; token: string }> {
  const token = randomBytes(24).toString('base64url');
  const configFile = join(dir, 'nats-server.conf');
  const base = await readFile(REPO_NATS_CONF, 'utf8');
  await writeOwnerOnly(tokenFile(dir), `${token}\n`);
  await writeOwnerOnly(configFile, `${base}\n# Added by smartspec: the token of this data folder (nats-token).\nauthorization { token: "${token}" }\n`);
  return { configFile, token };
}

/** The token of the folder's server; undefined when there is none (a server started without one). */
export function readEmbeddedToken(dir: string): string | undefined {
  try {
    return readFileSync(tokenFile(dir), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

async function writeOwnerOnly(file: string, text: string): Promise<void> {
  await writeFile(file, text, { mode: 0o600 });
  await chmod(file, 0o600); // the mode above only applies to a new file
}
