/**
 * The secret store on a real nats-server: values are sealed in the KV bucket
 * (no plaintext in any stored message), the environment is read first, a
 * process without the key cannot read or store, `remove` purges; and a step
 * naming a secret that is not set fails with SECRET_NOT_FOUND, not retried.
 */
import { stepMapGet } from '../../../machines/index.js';
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { SecretStore } from '../../../src/secrets/secretStore.js';
import { def, useEngine } from '../../support/engine.js';
import { useNatsServer } from '../../support/nats.js';

const nats = useNatsServer();
const fx = useEngine(nats);
const KEY = randomBytes(32).toString('hex');

async function bucketMessages(): Promise<string[]> {
  const jsm = await jetstreamManager(fx.nc);
  const { state } = await jsm.streams.info('KV_smartspec_secrets');
  const out: string[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage('KV_smartspec_secrets', { seq }).catch(() => null);
    if (m) out.push(Buffer.from(m.data).toString('latin1'));
  }
  return out;
}

describe('SecretStore', () => {
  it('seals values at rest, reads them back, lists names only, purges on remove', async () => {
    const store = await SecretStore.open(fx.nc, { SMARTSPEC_SECRETS_KEY: KEY });
    const value = `plain-${randomBytes(8).toString('hex')}`;
    await store.set('DB_PASSWORD', value);
    expect(await store.get('DB_PASSWORD')).toBe(value);
    expect(await store.list()).toContain('DB_PASSWORD');
    const stored = await bucketMessages();
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.join('\n')).not.toContain(value);

    expect(await store.remove('DB_PASSWORD')).toBe(true);
    expect(await store.list()).not.toContain('DB_PASSWORD');
    expect((await bucketMessages()).some((m) => m.includes('"tag"'))).toBe(false); // no sealed value left in the history
    await expect(store.get('DB_PASSWORD')).rejects.toMatchObject({ code: 'SECRET_NOT_FOUND' });
  });

  it('without the key: cannot store, cannot read what is stored; the environment still works and comes first', async () => {
    await (await SecretStore.open(fx.nc, { SMARTSPEC_SECRETS_KEY: KEY })).set('TOKEN', 'from-the-bucket');
    const keyless = await SecretStore.open(fx.nc, { SMARTSPEC_SECRET_ENV_ONLY: 'from-env' });
    await expect(keyless.set('X', 'v')).rejects.toMatchObject({ code: 'SECRETS_KEY_INVALID', message: expect.stringMatching(/SMARTSPEC_SECRETS_KEY is not set/) });
    await expect(keyless.get('TOKEN')).rejects.toMatchObject({ code: 'SECRETS_KEY_INVALID' });
    expect(await keyless.get('ENV_ONLY')).toBe('from-env');
    const both = await SecretStore.open(fx.nc, { SMARTSPEC_SECRETS_KEY: KEY, SMARTSPEC_SECRET_TOKEN: 'from-env' });
    expect(await both.get('TOKEN')).toBe('from-env');
    const wrongKey = await SecretStore.open(fx.nc, { SMARTSPEC_SECRETS_KEY: randomBytes(32).toString('hex') });
    await expect(wrongKey.get('TOKEN')).rejects.toThrow(/does not decrypt/);
  });
});

describe('a step naming a secret that is not set', () => {
  it('fails with SECRET_NOT_FOUND naming it, on its first attempt only', async () => {
    const engine = await fx.engine();
    const definition = def({ id: 'missing-secret', steps: [{ id: 'use', type: 'transform', value: '{{secrets.NOT_SET_ANYWHERE}}', retry: { maxAttempts: 3, initialDelayMs: 1 } }] });
    const runner = await engine.start({ definition });
    const { status, snapshot } = await runner.settled();
    expect(status).toBe('FAILED');
    expect(snapshot.context.error).toMatchObject({ code: 'SECRET_NOT_FOUND', retryable: false, message: expect.stringMatching(/secret 'NOT_SET_ANYWHERE' is not set/) });
    expect(stepMapGet(snapshot.context.attempts, "use")).toBe(1);
  });
});
