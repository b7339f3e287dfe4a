/**
 * When authentication is on, and where the edge listens (a nats-server of its
 * own, so no key exists at first): without keys the edge is open to loopback
 * only and records the anonymous principal; a non-loopback HOST needs
 * --insecure; the first key created turns authentication on for a running
 * edge; SMARTSPEC_AUTH=required needs a key even before one exists.
 */
import { networkInterfaces } from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../../src/auth/keys.js';
import { CommandBus } from '../../src/bus/commands.js';
import { connectNats } from '../../src/nats/connect.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService } from '../support/service.js';
import { expectProblem, uniq, until } from './http-helpers.js';

const nats = useNatsServer();
const startService = useService(nats);
let nc: NatsConnection;

beforeAll(async () => {
  nc = await connectNats(nats.url, 'auth-modes-test');
});
afterAll(async () => {
  await nc?.close();
});

/** A non-loopback IPv4 address of this machine, if it has one. */
const externalAddress = () => Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

async function reachable(url: string): Promise<boolean> {
  return fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(() => true, () => false);
}

describe('without any key', () => {
  it('serves anonymously on 127.0.0.1 only, as the default tenant', async () => {
    const svc = await startService();
    expect(new URL(svc.url).hostname).toBe('127.0.0.1');
    const ext = externalAddress();
    if (ext) expect(await reachable(`http://${ext}:${new URL(svc.url).port}`)).toBe(false);

    const r = await http(svc.url, 'POST', '/executions', { definition: { id: uniq('anon'), steps: [{ id: 'a', type: 'transform', value: 1 }] } });
    expect(r.status).toBe(202);
    const evs = await until('the start recorded', async () => {
      const e = await http(svc.url, 'GET', `/executions/${r.json.executionId}/events`);
      return e.status === 200 && e.json.events.length > 0 ? e.json.events : undefined;
    });
    expect(evs[0].principal).toEqual({ tenant: 'default', keyId: 'anonymous' });
    expect((await http(svc.url, 'GET', '/executions')).status).toBe(200);
  });

  it('records a command published on NATS without a principal as the default tenant\'s "nats"', async () => {
    const svc = await startService();
    const executionId = uniq('from-nats');
    const bus = await CommandBus.open(nc);
    await bus.publish('start', { executionId, definition: { id: 'n', steps: [{ id: 'a', type: 'transform', value: 1 }] }, input: {} }, `start:${executionId}`);
    const evs = await until('the start recorded', async () => {
      const e = await http(svc.url, 'GET', `/executions/${executionId}/events`);
      return e.status === 200 && e.json.events.length > 0 ? e.json.events : undefined;
    });
    expect(evs[0]).toMatchObject({ type: 'ExecutionStarted', principal: { tenant: 'default', keyId: 'nats' } });
  });

  it('refuses to listen on a non-loopback address unless told --insecure', async () => {
    await expect(startService({ worker: false, env: { HOST: '0.0.0.0' } })).rejects.toThrow(/HOST: '0\.0\.0\.0' is not a loopback address and no API key exists.*--insecure/);
    const open = await startService({ worker: false, env: { HOST: '0.0.0.0', SMARTSPEC_INSECURE: 'true' } });
    const ext = externalAddress();
    if (ext) expect(await reachable(`http://${ext}:${new URL(open.url).port}`)).toBe(true);
    expect((await http(open.url, 'GET', '/executions')).status).toBe(200);
  });

  it('SMARTSPEC_AUTH=required needs a key even before one exists; the probes stay open', async () => {
    const svc = await startService({ worker: false, env: { SMARTSPEC_AUTH: 'required' } });
    expectProblem(await http(svc.url, 'GET', '/executions'), 401, 'UNAUTHENTICATED');
    expect((await http(svc.url, 'GET', '/healthz')).status).toBe(200);
  });
});

describe('the first key', () => {
  it('turns authentication on for an edge already running', async () => {
    const svc = await startService({ worker: false });
    expect((await http(svc.url, 'GET', '/executions')).status).toBe(200);
    const { key } = await (await KeyStore.open(nc)).create({ tenant: 'first', scopes: ['read'] });
    await until('anonymous refused', async () => (await http(svc.url, 'GET', '/executions')).status === 401);
    expect((await http(svc.url, 'GET', '/executions', undefined, { authorization: `Bearer ${key}` })).status).toBe(200);
    // And a new edge, keys existing, listens wherever HOST says without --insecure.
    const wide = await startService({ worker: false, env: { HOST: '0.0.0.0' } });
    expectProblem(await http(wide.url, 'GET', '/executions'), 401, 'UNAUTHENTICATED');
  });
});
