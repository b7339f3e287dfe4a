/**
 * NATS in operator (decentralized JWT) mode, issue 11 item 4: "the service
 * connects with ... a creds file". The test makes an operator, a system
 * account, an application account with JetStream, and users with their creds
 * files (nkeys and JWTs, as `nsc` would), and runs a real nats-server with a
 * memory resolver. The service, given NATS_CREDS, runs an execution through a
 * signal to COMPLETED; an anonymous client, a password, and a user of an
 * account the operator never signed are refused; a user whose JWT allows only
 * starts cannot publish a signal (the server refuses it, the execution still
 * waits).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeAccount, encodeOperator, encodeUser, fmtCreds, type User } from '@nats-io/jwt';
import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys';
import { jetstream } from '@nats-io/jetstream';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../src/cli/service.js';
import { connectNats } from '../../src/nats/connect.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { until } from '../support/processes.js';
import { http, waitForStatus } from '../support/service.js';

const UNLIMITED = { subs: -1, data: -1, payload: -1, conn: -1, leaf: -1, imports: -1, exports: -1, wildcards: true };
const JETSTREAM = { disk_storage: -1, mem_storage: -1, streams: -1, consumer: -1 };

let tmp: string;
let server: NatsServer;
let logFile: string;
let service: RunningService & { url: string };
let appAccount: KeyPair;
const creds: Record<'service' | 'startOnly' | 'stranger', string> = { service: '', startOnly: '', stranger: '' };
const connections: NatsConnection[] = [];

/** A creds file for a new user of `account`, with `permissions` in its JWT (none: everything). */
async function credsFile(name: string, account: KeyPair, permissions: Partial<User> = {}): Promise<string> {
  const user = createUser();
  const jwt = await encodeUser(name, user, account, permissions);
  const file = join(tmp, `${name}.creds`);
  await writeFile(file, fmtCreds(jwt, user), { mode: 0o600 });
  return file;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-natsjwt-'));
  const operator = createOperator();
  const system = createAccount();
  appAccount = createAccount();
  const signedBy = { signer: operator };
  const operatorJwt = await encodeOperator('smartspec-test', operator, { system_account: system.getPublicKey() });
  const systemJwt = await encodeAccount('SYS', system, { limits: UNLIMITED }, signedBy);
  const appJwt = await encodeAccount('SMARTSPEC', appAccount, { limits: { ...UNLIMITED, ...JETSTREAM } }, signedBy);
  const config = join(tmp, 'operator.conf');
  await writeFile(config, [
    'listen: 127.0.0.1:-1',
    'max_payload: 8MB',
    'jetstream { max_file_store: 10GB, max_memory_store: 256MB }',
    `operator: ${operatorJwt}`,
    `system_account: ${system.getPublicKey()}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${system.getPublicKey()}: ${systemJwt}`,
    `  ${appAccount.getPublicKey()}: ${appJwt}`,
    '}',
    '',
  ].join('\n'));
  logFile = join(tmp, 'nats.log');
  server = await startNatsServer({ storeDir: join(tmp, 'store'), configFile: config, logFile });

  creds.service = await credsFile('service', appAccount);
  // Starts only: JetStream API and its own inbox, as nats-users.conf's integration user.
  creds.startOnly = await credsFile('start-only', appAccount, { pub: { allow: ['smartspec.cmd.start', '$JS.API.>'] }, sub: { allow: ['_INBOX.>'] } });
  // Signed by an account the operator never signed.
  creds.stranger = await credsFile('stranger', createAccount());

  service = (await startService({ edge: true, worker: true }, {
    PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '100000', ACK_WAIT_MS: '2000',
    NATS_URL: server.url, NATS_CREDS: creds.service,
  })) as RunningService & { url: string };
}, 60_000);

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  await service?.stop();
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const violations = async () => (await readFile(logFile, 'utf8')).split('\n').filter((l) => /violation/i.test(l));

const approval = (id: string) => ({
  id,
  steps: [
    { id: 'draft', type: 'transform', value: { text: 'spec of {{input.feature}}' } },
    { id: 'approve', type: 'signal' },
    { id: 'done', type: 'transform', value: { approved: '{{steps.approve.output.approved}}' } },
  ],
});

describe('the service against a nats-server in operator (JWT) mode', () => {
  it('with NATS_CREDS, runs an execution through a signal to COMPLETED, with no permission violation', async () => {
    const r = await http(service.url, 'POST', '/executions', { definition: approval('jwt-flow'), input: { feature: 'sso' } });
    expect(r.status, r.text).toBe(202);
    const id: string = r.json.executionId;
    expect((await waitForStatus(service.url, id, ['WAITING', 'FAILED'])).status).toBe('WAITING');
    expect((await http(service.url, 'POST', `/executions/${id}/signals/approve`, { approved: true })).status).toBe(202);
    const done = await waitForStatus(service.url, id, ['COMPLETED', 'FAILED', 'CANCELLED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.done.output).toEqual({ approved: true });
    expect(await violations()).toEqual([]);
  });

  it('refuses an anonymous client, a user/password, and a user of an account the operator did not sign', async () => {
    const anonymous = await connectNats(server.url, 'anonymous', {}).catch((e: unknown) => e);
    expect(anonymous).toMatchObject({ code: 'NATS_AUTH_FAILED' });
    expect((anonymous as Error).message).toMatch(/NATS requires credentials.*NATS_CREDS/);
    const password = await connectNats(server.url, 'password', { NATS_USER: 'service', NATS_PASSWORD: 'guess' }).catch((e: unknown) => e);
    expect(password).toMatchObject({ code: 'NATS_AUTH_FAILED', message: expect.stringMatching(/NATS_USER, NATS_PASSWORD/) });
    const stranger = await connectNats(server.url, 'stranger', { NATS_CREDS: creds.stranger }).catch((e: unknown) => e);
    expect(stranger).toMatchObject({ code: 'NATS_AUTH_FAILED', message: expect.stringMatching(/refused the credentials from NATS_CREDS/) });
  });

  it('an anonymous publish of a signal never reaches the execution: the connection itself is refused', async () => {
    const r = await http(service.url, 'POST', '/executions', { definition: approval('jwt-anon'), input: { feature: 'x' } });
    const id: string = r.json.executionId;
    expect((await waitForStatus(service.url, id, ['WAITING', 'FAILED'])).status).toBe('WAITING');
    const err = await connect({ servers: server.url, reconnect: false }).then(
      async (nc) => { connections.push(nc); nc.publish('smartspec.cmd.signal', JSON.stringify({ executionId: id, name: 'approve', payload: { approved: true } })); await nc.flush(); return undefined; },
      (e: unknown) => e,
    );
    expect(String(err)).toMatch(/authorization violation/i);
    const still = (await http(service.url, 'GET', `/executions/${id}`)).json;
    expect(still.status).toBe('WAITING');
  });

  it("a user whose JWT allows only starts may start an execution, but the server refuses its signal", async () => {
    const nc = await connect({ servers: server.url, authenticator: credsAuthenticator(await readFile(creds.startOnly)), reconnect: false });
    connections.push(nc);
    const js = jetstream(nc);
    const start = { executionId: 'jwt-start-only', definition: approval('jwt-start-only'), input: { feature: 'api' } };
    expect((await js.publish('smartspec.cmd.start', JSON.stringify(start), { msgID: 'start:jwt-start-only' })).seq).toBeGreaterThan(0);
    expect((await waitForStatus(service.url, 'jwt-start-only', ['WAITING', 'FAILED'])).status).toBe('WAITING');

    const signal = JSON.stringify({ executionId: 'jwt-start-only', name: 'approve', payload: { approved: true } });
    const err = await js.publish('smartspec.cmd.signal', signal, { timeout: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    await until('the server to log the refusal', async () => (await violations()).some((l) => l.includes('Subject "smartspec.cmd.signal"')), 10_000);
    const still = (await http(service.url, 'GET', '/executions/jwt-start-only')).json;
    expect(still.status).toBe('WAITING');
    expect(still.steps.approve.phase).toBe('waiting');
  });
});
