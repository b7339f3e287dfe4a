/**
 * NATS credentials from the environment: what is set becomes connect options;
 * a missing, unreadable or malformed value fails at once, naming its variable.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { natsAuthFromEnv } from '../../src/nats/credentials.js';

const tmp = mkdtempSync(join(tmpdir(), 'smartspec-natscreds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
};
const userSeed = new TextDecoder().decode(nkeys.createUser().getSeed());

/** The error's text, or a failure if there is none. */
function refusal(env: NodeJS.ProcessEnv): string {
  try {
    natsAuthFromEnv(env);
  } catch (err) {
    expect(err).toMatchObject({ code: 'INVALID_CONFIG' });
    return (err as Error).message;
  }
  throw new Error('expected natsAuthFromEnv to refuse ' + JSON.stringify(env));
}

describe('NATS credentials from the environment', () => {
  it('nothing set: anonymous, no options', () => {
    expect(natsAuthFromEnv({ NATS_URL: 'nats://x:4222', NATS_USER: '  ' })).toEqual({ options: {}, variables: [] });
  });

  it('user and password, token, a seed (inline or from a file), and a creds file become connect options', () => {
    expect(natsAuthFromEnv({ NATS_USER: 'edge', NATS_PASSWORD: 'pw' })).toEqual({ options: { user: 'edge', pass: 'pw' }, variables: ['NATS_USER', 'NATS_PASSWORD'] });
    expect(natsAuthFromEnv({ NATS_TOKEN: 't0k' })).toEqual({ options: { token: 't0k' }, variables: ['NATS_TOKEN'] });
    expect(natsAuthFromEnv({ NATS_NKEY_SEED: userSeed }).options.authenticator).toBeTypeOf('function');
    expect(natsAuthFromEnv({ NATS_NKEY_SEED_FILE: file('user.nk', `${userSeed}\n`) }).variables).toEqual(['NATS_NKEY_SEED_FILE']);
    // The shape `nsc generate creds` writes (the JWT's content is the server's business).
    const creds = `-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${userSeed}\n------END USER NKEY SEED------\n`;
    expect(natsAuthFromEnv({ NATS_CREDS: file('u.creds', creds) }).options.authenticator).toBeTypeOf('function');
  });

  it('TLS files are read at start into the options', () => {
    const auth = natsAuthFromEnv({ NATS_TLS_CA: file('ca.pem', 'CA'), NATS_TLS_CERT: file('c.pem', 'CERT'), NATS_TLS_KEY: file('c.key', 'KEY') });
    expect(auth.options.tls).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY' });
    expect(auth.variables).toEqual(['NATS_TLS_CA', 'NATS_TLS_CERT', 'NATS_TLS_KEY']);
  });

  it('a password without a user names NATS_USER', () => {
    expect(refusal({ NATS_PASSWORD: 'pw' })).toMatch(/^invalid environment: NATS_USER: not set, but NATS_PASSWORD is/);
  });

  it('two ways to log in at once are refused, naming the second', () => {
    expect(refusal({ NATS_USER: 'a', NATS_PASSWORD: 'b', NATS_TOKEN: 't' })).toMatch(/NATS_TOKEN: set together with NATS_USER/);
    expect(refusal({ NATS_NKEY_SEED: userSeed, NATS_NKEY_SEED_FILE: '/x' })).toMatch(/NATS_NKEY_SEED_FILE: set together with NATS_NKEY_SEED/);
  });

  it('a malformed seed, or a seed that is not a user seed, names its variable', () => {
    expect(refusal({ NATS_NKEY_SEED: 'SUnotaseed' })).toMatch(/NATS_NKEY_SEED: not a valid NKEY seed/);
    const accountSeed = new TextDecoder().decode(nkeys.createAccount().getSeed());
    expect(refusal({ NATS_NKEY_SEED_FILE: file('account.nk', accountSeed) })).toMatch(/NATS_NKEY_SEED_FILE: not a user NKEY seed/);
  });

  it('a missing file names its variable and the path', () => {
    for (const name of ['NATS_NKEY_SEED_FILE', 'NATS_CREDS', 'NATS_TLS_CA']) {
      expect(refusal({ [name]: join(tmp, 'nope') })).toMatch(new RegExp(`^invalid environment: ${name}: cannot read .*nope: no such file`));
    }
  });

  it('a creds file that is not one names NATS_CREDS', () => {
    expect(refusal({ NATS_CREDS: file('bad.creds', 'hello') })).toMatch(/NATS_CREDS: not a NATS credentials file/);
  });

  it('a client certificate without its key (or the reverse) names the missing one', () => {
    expect(refusal({ NATS_TLS_CERT: file('only.pem', 'C') })).toMatch(/NATS_TLS_KEY: not set, but NATS_TLS_CERT is/);
    expect(refusal({ NATS_TLS_KEY: file('only.key', 'K') })).toMatch(/NATS_TLS_CERT: not set, but NATS_TLS_KEY is/);
  });
});
