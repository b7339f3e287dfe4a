/**
 * NATS authentication (issue 11, item 4): the shipped nats-auth.conf on a real
 * nats-server. The edge and the worker log in as their users and run an
 * execution through a signal to COMPLETED with no permission violation in the
 * server's log; an anonymous client cannot connect; the `integration` user may
 * start an execution but its signal (and any other command) is refused by the
 * server; wrong or missing credentials fail naming the variables used.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../src/cli/service.js';
import { connectNats } from '../../src/nats/connect.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { runCommand } from '../support/commands.js';
import { killChild, REPO, spawnCli, until } from '../support/processes.js';
import { natsUser, runnableConfig, TEST_NATS_PASSWORDS } from '../support/nats.js';
import { http, waitForStatus } from '../support/service.js';

const as = natsUser;

let tmp: string;
let server: NatsServer;
let logFile: string;
let edge: RunningService & { url: string };
let worker: RunningService;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-natsauth-'));
  const configFile = await runnableConfig(join(REPO, 'nats-auth.conf'), tmp);
  logFile = join(tmp, 'nats.log');
  server = await startNatsServer({ storeDir: join(tmp, 'store'), configFile, env: TEST_NATS_PASSWORDS, logFile });
  const base = { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '100000', ACK_WAIT_MS: '2000', NATS_URL: server.url };
  worker = await startService({ edge: false, worker: true }, { ...base, ...as('worker') });
  edge = (await startService({ edge: true, worker: false }, { ...base, ...as('edge') })) as RunningService & { url: string };
});

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  await edge?.stop();
  await worker?.stop();
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** The integration user, with its replies on its own inbox prefix (nats-users.conf), not on `_INBOX.>`. */
async function connectAsIntegration(): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url, user: 'integration', pass: TEST_NATS_PASSWORDS.SMARTSPEC_INTEGRATION_PASSWORD, inboxPrefix: '_INBOX_integration' });
  connections.push(nc);
  return nc;
}

const violations = async () => (await readFile(logFile, 'utf8')).split('\n').filter((l) => /violation/i.test(l));

function approval(id: string) {
  return {
    id,
    steps: [
      { id: 'draft', type: 'transform', value: { text: 'spec of {{input.feature}}' } },
      { id: 'approve', type: 'signal' },
      { id: 'done', type: 'transform', value: { approved: '{{steps.approve.output.approved}}' } },
    ],
  };
}

describe('the service against a nats-server that requires credentials', () => {
  it('edge and worker, each as its own user, run an execution through a signal to COMPLETED with no permission violation', async () => {
    const r = await http(edge.url, 'POST', '/executions', { definition: approval('auth-flow'), input: { feature: 'sso' } });
    expect(r.status, r.text).toBe(202);
    const id: string = r.json.executionId;
    expect((await waitForStatus(edge.url, id, ['WAITING', 'FAILED'])).status).toBe('WAITING');
    const s = await http(edge.url, 'POST', `/executions/${id}/signals/approve`, { approved: true });
    expect(s.status, s.text).toBe(202);
    const done = await waitForStatus(edge.url, id, ['COMPLETED', 'FAILED', 'CANCELLED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.done.output).toEqual({ approved: true });
    // Cancelling a waiting execution goes through the control subject to its worker.
    const c = await http(edge.url, 'POST', '/executions', { definition: approval('auth-cancel'), input: { feature: 'x' } });
    expect((await waitForStatus(edge.url, c.json.executionId, ['WAITING', 'FAILED'])).status).toBe('WAITING');
    expect((await http(edge.url, 'POST', `/executions/${c.json.executionId}/cancel`, { reason: 'test' })).status).toBe(202);
    expect((await waitForStatus(edge.url, c.json.executionId, ['CANCELLED', 'COMPLETED', 'FAILED'])).status).toBe('CANCELLED');
    expect(await violations()).toEqual([]);
  });

  it('a waitForEvent step, a concurrency key, a sleep and a map run as the worker user, the event published as the integration user: no violation', async () => {
    const before = (await violations()).length;
    const definition = {
      id: 'auth-events',
      concurrency: [{ key: 'auth-{{input.tenant}}', limit: 1 }],
      steps: [
        { id: 'nap', type: 'sleep', durationMs: 10 },
        { id: 'each', type: 'map', items: '{{input.docs}}', steps: [{ id: 'one', type: 'transform', value: '{{item}}' }] },
        { id: 'paid', type: 'waitForEvent', subject: 'events.auth.paid', match: '{% event.order = input.order %}' },
        { id: 'done', type: 'transform', value: { paid: '{{steps.paid.output}}' } },
      ],
    };
    const r = await http(edge.url, 'POST', '/executions', { definition, input: { tenant: 'a', order: 7, docs: ['x', 'y'] } });
    expect(r.status, r.text).toBe(202);
    const id: string = r.json.executionId;
    await until('the step to wait for its event', async () => (await http(edge.url, 'GET', `/executions/${id}`)).json.steps?.paid?.phase === 'waiting' || undefined, 20_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; the server refused: ${(await violations()).slice(before).join('\n') || 'nothing'}; the execution: ${JSON.stringify((await http(edge.url, 'GET', `/executions/${id}`)).json)}`);
    });
    const nc = await connectAsIntegration();
    await jetstream(nc).publish('events.auth.paid', JSON.stringify({ order: 7, amount: 3 }));
    const done = await waitForStatus(edge.url, id, ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; the server refused: ${(await violations()).slice(before).join('\n') || 'nothing'}`);
    });
    expect(done.status, JSON.stringify(done.error ?? null)).toBe('COMPLETED');
    expect(done.steps.each.output).toEqual(['x', 'y']);
    expect((await violations()).slice(before)).toEqual([]);
  });

  it('a map whose items are child executions runs as the worker user: no violation', async () => {
    const before = (await violations()).length;
    // A sleep in the block: its items are child executions (a block of transforms alone runs inline).
    const definition = { id: 'auth-children', steps: [{ id: 'each', type: 'map', items: '{{input.docs}}', steps: [{ id: 'rest', type: 'sleep', durationMs: 1 }, { id: 'one', type: 'transform', value: '{{item}}' }] }] };
    const r = await http(edge.url, 'POST', '/executions', { definition, input: { docs: ['x', 'y', 'z'] } });
    expect(r.status, r.text).toBe(202);
    const done = await waitForStatus(edge.url, r.json.executionId, ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; the server refused: ${(await violations()).slice(before).join('\n') || 'nothing'}`);
    });
    expect(done.status, JSON.stringify(done.error ?? null)).toBe('COMPLETED');
    expect(done.steps.each.output).toEqual(['x', 'y', 'z']);
    expect((await violations()).slice(before)).toEqual([]);
  });

  it('an anonymous client cannot connect, and the error says which variables to set', async () => {
    const err = await connectNats(server.url, 'anonymous', {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NATS_AUTH_FAILED' });
    expect((err as Error).message).toMatch(/NATS requires credentials.*NATS_USER and NATS_PASSWORD/);
  });

  it('a wrong password is refused, naming the variables used', async () => {
    const err = await connectNats(server.url, 'wrong', { NATS_USER: 'edge', NATS_PASSWORD: 'not-it' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NATS_AUTH_FAILED' });
    expect((err as Error).message).toMatch(/refused the credentials from NATS_USER, NATS_PASSWORD/);
  });

  it('the integration user may start an execution, but the server refuses its signal, cancel and log append', async () => {
    const nc = await connectAsIntegration();
    expect(() => nc.subscribe('_INBOX.snoop')).not.toThrow();
    await until('the server to refuse a subscription to _INBOX.>', async () => (await violations()).some((l) => /Subscription Violation.*_INBOX\.snoop/.test(l)), 10_000);
    const js = jetstream(nc);
    const waiting = { executionId: 'integration-start', definition: approval('integration-start'), input: { feature: 'api' } };
    const ack = await js.publish('smartspec.cmd.start', JSON.stringify(waiting), { msgID: 'start:integration-start' });
    expect(ack.seq).toBeGreaterThan(0);
    expect((await waitForStatus(edge.url, 'integration-start', ['WAITING', 'FAILED'])).status).toBe('WAITING');

    const signal = JSON.stringify({ executionId: 'integration-start', name: 'approve', payload: { approved: true } });
    for (const subject of ['smartspec.cmd.signal', 'smartspec.cmd.cancel', 'smartspec.ctl.integration-start', 'smartspec.exec.integration-start']) {
      const err = await js.publish(subject, signal, { timeout: 3000 }).catch((e: unknown) => e);
      expect(err, subject).toBeInstanceOf(Error);
      expect(String((err as Error).message) + String((err as Error).cause ?? ''), subject).toMatch(/permission|timeout|no responders/i);
    }
    await until('the server to log the refusals', async () => (await violations()).length >= 5, 10_000);
    const refused = (await violations()).join('\n');
    for (const subject of ['smartspec.cmd.signal', 'smartspec.cmd.cancel', 'smartspec.ctl.integration-start', 'smartspec.exec.integration-start']) {
      expect(refused).toContain(`Subject "${subject}"`);
    }
    // Nothing got through: the execution still waits for its signal.
    const still = (await http(edge.url, 'GET', '/executions/integration-start')).json;
    expect(still.status).toBe('WAITING');
    expect(still.steps.approve.phase).toBe('waiting');
  });

  it('a stopping worker hands its waiting execution to another worker, and the edge signals it there: still no violation', async () => {
    const before = (await violations()).length;
    await worker.stop(0);
    worker = await startService({ edge: false, worker: true }, { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', ACK_WAIT_MS: '2000', NATS_URL: server.url, ...as('worker') });
    const s = await http(edge.url, 'POST', '/executions/integration-start/signals/approve', { approved: false });
    expect(s.status, s.text).toBe(202);
    const done = await waitForStatus(edge.url, 'integration-start', ['COMPLETED', 'FAILED', 'CANCELLED'], 30_000);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.done.output).toEqual({ approved: false });
    expect((await violations()).slice(before)).toEqual([]);
  });
});

describe('the CLI as the service user', () => {
  it('`smartspec run` and `status` work, with no permission violation', async () => {
    const before = (await violations()).length;
    const env = { NATS_URL: server.url, ...as('service') };
    const run = await runCommand(['run', 'examples/fork-join.json', '--id', 'auth-cli', '--input', '{"feature":"x"}'], env);
    expect(run.code, run.stderr).toBe(0);
    const status = await runCommand(['status', 'auth-cli'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^auth-cli\s+\S+\s+COMPLETED/m);
    expect((await violations()).slice(before)).toEqual([]);
  });
});

describe('the CLI with wrong or unusable credentials', () => {
  const fails = async (env: Record<string, string>, re: RegExp) => {
    const child = spawnCli('worker', 'worker', { LOG_LEVEL: 'silent', SMARTSPEC_DATA_DIR: join(tmp, 'data'), ...env });
    await child.exited;
    expect(child.proc.exitCode, child.output()).toBe(2);
    expect(child.output()).toMatch(re);
  };

  it('a worker run as the edge user: its refused log append is logged naming the user and subject', async () => {
    await worker.stop(0); // so the misconfigured worker is the one that takes the command
    const child = spawnCli('edge-as-worker', 'worker', { NATS_URL: server.url, ...as('edge'), ACK_WAIT_MS: '2000' });
    await child.waitForOutput(/worker consuming commands/, 30_000);
    const nc = await connectAsIntegration();
    await jetstream(nc).publish('smartspec.cmd.start', JSON.stringify({ executionId: 'wrong-role', definition: approval('wrong-role'), input: {} }), { msgID: 'start:wrong-role' });
    await child.waitForOutput(/NATS refused publish to \\"smartspec\.exec\.wrong-role\\" for NATS user 'edge': it lacks that permission/, 30_000);
    await killChild(child);
  });

  it('a wrong password: exit 2, naming NATS_USER and NATS_PASSWORD', async () => {
    await fails({ NATS_URL: server.url, NATS_USER: 'worker', NATS_PASSWORD: 'wrong' }, /error: NATS refused the credentials from NATS_USER, NATS_PASSWORD/);
  });

  it('a creds file that does not exist: exit 2, naming NATS_CREDS', async () => {
    await fails({ NATS_URL: server.url, NATS_CREDS: join(tmp, 'missing.creds') }, /error: invalid environment: NATS_CREDS: cannot read .*missing\.creds: no such file/);
  });

  it('credentials with no NATS_URL (the embedded server has its own token): exit 2, naming the variable', async () => {
    await fails({ NATS_TOKEN: 'abc' }, /error: invalid environment: NATS_TOKEN: set, but NATS_URL is not/);
  });
});
