/**
 * Identity and access over real HTTP against a real nats-server and worker:
 * 401 without a valid key on every route but the probes, 403 without the
 * scope, 404 for another tenant's executions and workflows, revocation within
 * a second, keys never stored, per-key rate limits, the per-tenant cap, and
 * the principal in the log (and checked by replay). A fast-check property
 * throws random routes × random credentials at the edge.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../../src/auth/keys.js';
import type { Scope } from '../../src/auth/principal.js';
import { requiredScope } from '../../src/edge/middleware/authentication.js';
import { EventLog } from '../../src/log/eventLog.js';
import { hashRecord, type StoredRecord } from '../../src/log/records.js';
import { replayExecution } from '../../src/log/replay.js';
import { connectNats } from '../../src/nats/connect.js';
import { bounded, checkProperty } from '../fuzz/arbitraries.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService } from '../support/service.js';
import { events, expectProblem, uniq, until } from './http-helpers.js';

const nats = useNatsServer();
const startService = useService(nats);

interface TestKey { key: string; keyId: string; tenant: string; scopes: Scope[] }
let nc: NatsConnection;
let store: KeyStore;
let base: string;
const K = {} as Record<'admin' | 'aWrite' | 'aRead' | 'aLlm' | 'bWrite' | 'revoked', TestKey>;
const auth = (k: TestKey | string) => ({ authorization: `Bearer ${typeof k === 'string' ? k : k.key}` });

async function makeKey(tenant: string, scopes: Scope[]): Promise<TestKey> {
  const { key, record } = await store.create({ tenant, scopes });
  return { key, keyId: record.keyId, tenant, scopes };
}

const waitingDefinition = (id = uniq('wait')) => ({ id, steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'go', type: 'signal' }, { id: 'b', type: 'transform', value: '{{steps.go.output}}' }] });

/** Start, as `key`, an execution that waits for signal `go`. */
async function waitingExecution(key: TestKey): Promise<string> {
  const r = await http(base, 'POST', '/executions', { definition: waitingDefinition(), input: {} }, auth(key));
  expect(r.status, r.text).toBe(202);
  await until('WAITING', async () => (await http(base, 'GET', `/executions/${r.json.executionId}`, undefined, auth(key))).json?.status === 'WAITING');
  return r.json.executionId;
}

let aWaiting: string;

beforeAll(async () => {
  nc = await connectNats(nats.url, 'auth-test');
  store = await KeyStore.open(nc);
  K.admin = await makeKey('ops', ['admin']);
  K.aWrite = await makeKey('acme', ['read', 'write']);
  K.aRead = await makeKey('acme', ['read']);
  K.aLlm = await makeKey('acme', ['llm']);
  K.bWrite = await makeKey('beta', ['read', 'write']);
  K.revoked = await makeKey('acme', ['read', 'write']);
  await store.revoke(K.revoked.keyId);
  base = (await startService({ env: { HOST: '127.0.0.1' } })).url;
  aWaiting = await waitingExecution(K.aWrite);
}, 30_000);

afterAll(async () => {
  await nc?.close();
});

/** Every route of the API, with a body where it takes one (ID: tenant A's waiting execution). */
const ROUTES: [method: string, path: string, body?: unknown][] = [
  ['GET', '/workflows'],
  ['POST', '/workflows', { id: 'w', steps: [{ id: 'a', type: 'transform', value: 1 }] }],
  ['GET', '/workflows/w'],
  ['POST', '/executions', { definition: { id: 'w', steps: [{ id: 'a', type: 'transform', value: 1 }] } }],
  ['GET', '/executions'],
  ['GET', '/executions/ID'],
  ['GET', '/executions/ID/events'],
  ['GET', '/executions/ID/events/stream'],
  ['GET', '/executions/ID/checkpoints'],
  ['POST', '/executions/ID/resume', {}],
  ['POST', '/executions/ID/cancel', {}],
  ['POST', '/executions/ID/signals/go', { ok: true }],
  ['POST', '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'hi' }] }],
  ['GET', '/v1/models'],
  ['GET', '/metrics'],
  ['POST', '/keys', { tenant: 'x', scopes: ['read'] }],
  ['GET', '/keys'],
  ['DELETE', '/keys/0123456789abcdef'],
  ['GET', '/no-such-route'],
];
const WRITES = ROUTES.filter(([m]) => m !== 'GET');

/** One request; a 200 event stream is cut as soon as its headers arrive. */
async function send(method: string, path: string, body: unknown, headers: Record<string, string>) {
  const controller = new AbortController();
  const res = await fetch(base + path.replace('ID', aWaiting), {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: controller.signal,
  });
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    controller.abort();
    return { status: res.status, headers: res.headers, text: '', json: undefined as any };
  }
  const text = await res.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

describe('authentication', () => {
  it('answers 401 problem+json with the security headers on every route without a key, and keeps the probes open', async () => {
    for (const [method, path, body] of ROUTES) {
      const r = await send(method, path, body, {});
      expect(r.status, `${method} ${path}`).toBe(401);
      expectProblem(r, 401, 'UNAUTHENTICATED');
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect((await http(base, 'GET', '/healthz')).status).toBe(200);
    expect((await http(base, 'GET', '/readyz')).status).toBe(200);
  });

  it('refuses malformed, unknown, revoked and non-Bearer credentials with 401', async () => {
    const forged = `ssk_${K.aWrite.keyId}_${'A'.repeat(43)}`; // a real key id with the wrong secret
    for (const header of ['Bearer', 'Bearer ', `Basic ${Buffer.from('a:b').toString('base64')}`, 'Bearer ssk_nothing', forged, K.revoked.key, `Bearer ${K.aWrite.key}x`]) {
      const r = await http(base, 'GET', '/executions', undefined, { authorization: header.startsWith('Bearer') || header.startsWith('Basic') ? header : `Bearer ${header}` });
      expectProblem(r, 401, 'UNAUTHENTICATED');
    }
  });

  it('answers 403 with the missing scope on every write for a read-only key', async () => {
    for (const [method, path, body] of WRITES) {
      const r = await send(method, path, body, auth(K.aRead));
      const problem = expectProblem(r, 403, 'FORBIDDEN');
      expect(problem.requiredScope, `${method} ${path}`).toBe(requiredScope(method, path));
    }
    // and reads work
    expect((await http(base, 'GET', `/executions/${aWaiting}`, undefined, auth(K.aRead))).status).toBe(200);
  });

  it('keeps the LLM proxy for llm keys, /keys and /metrics for admin keys', async () => {
    expectProblem(await http(base, 'GET', '/v1/models', undefined, auth(K.aWrite)), 403, 'FORBIDDEN');
    expect((await http(base, 'GET', '/v1/models', undefined, auth(K.aLlm))).status).toBe(200);
    expectProblem(await http(base, 'GET', '/executions', undefined, auth(K.aLlm)), 403, 'FORBIDDEN');
    expectProblem(await http(base, 'GET', '/metrics', undefined, auth(K.aWrite)), 403, 'FORBIDDEN');
    expect((await http(base, 'GET', '/metrics', undefined, auth(K.admin))).status).toBe(200);
    const keys = await http(base, 'GET', '/keys', undefined, auth(K.admin));
    expect(keys.status).toBe(200);
    expect(keys.json.keys.map((k: { keyId: string }) => k.keyId)).toContain(K.aWrite.keyId);
    expect(keys.text).not.toContain(createHash('sha256').update(K.aWrite.key).digest('hex')); // no hashes in listings
  });

  it('counts the rate limit per key, not per address', async () => {
    const svc = await startService({ worker: false, env: { HOST: '127.0.0.1', RATE_LIMIT_MAX: '2' } });
    for (let i = 0; i < 2; i++) expect((await http(svc.url, 'GET', '/executions', undefined, auth(K.aRead))).status).toBe(200);
    expectProblem(await http(svc.url, 'GET', '/executions', undefined, auth(K.aRead)), 429, 'RATE_LIMITED');
    expect((await http(svc.url, 'GET', '/executions', undefined, auth(K.aWrite))).status).toBe(200); // same address, other key
  });

  it('lets a scraper read /metrics with SMARTSPEC_METRICS_TOKEN, and nothing else', async () => {
    const token = 'scrape-token-0123456789';
    const svc = await startService({ worker: false, env: { HOST: '127.0.0.1', SMARTSPEC_METRICS_TOKEN: token } });
    const m = await http(svc.url, 'GET', '/metrics', undefined, auth(token));
    expect(m.status).toBe(200);
    expect(m.text).toContain('# HELP');
    expectProblem(await http(svc.url, 'GET', '/executions', undefined, auth(token)), 401, 'UNAUTHENTICATED');
    expectProblem(await http(svc.url, 'GET', '/metrics', undefined, auth('scrape-token-wrong-000000')), 401, 'UNAUTHENTICATED');
  });
});

describe('keys', () => {
  it('revoked keys stop working within a second, whether revoked over HTTP or from another process', async () => {
    const created = await http(base, 'POST', '/keys', { tenant: 'acme', scopes: ['read'], name: 'short-lived' }, auth(K.admin));
    expect(created.status, created.text).toBe(201);
    expect(created.json.key).toMatch(/^ssk_[0-9a-f]{16}_/);
    expect(created.json.hash).toBeUndefined();
    expect((await http(base, 'GET', '/executions', undefined, auth(created.json.key))).status).toBe(200);
    const revoked = await http(base, 'DELETE', `/keys/${created.json.keyId}`, undefined, auth(K.admin));
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json.revokedAt).toEqual(expect.any(String));
    await until('the HTTP-revoked key refused', async () => (await http(base, 'GET', '/executions', undefined, auth(created.json.key))).status === 401, 1000, 10);

    // Revoked by another process (the CLI's path: its own connection and store): the edge learns it by its KV watch.
    const other = await makeKey('acme', ['read']);
    await until('the new key accepted', async () => (await http(base, 'GET', '/executions', undefined, auth(other))).status === 200, 1000, 10);
    const nc2 = await connectNats(nats.url, 'auth-test-cli');
    try {
      await (await KeyStore.open(nc2)).revoke(other.keyId);
    } finally {
      await nc2.close();
    }
    // The contract: refused within a second of the revocation.
    await until('the CLI-revoked key refused', async () => (await http(base, 'GET', '/executions', undefined, auth(other))).status === 401, 1000, 10);
    expectProblem(await http(base, 'DELETE', '/keys/0123456789abcdef', undefined, auth(K.admin)), 404, 'KEY_NOT_FOUND');
  });

  it('never stores a key: not in the keys bucket, the command stream or the log, while its hash is', async () => {
    const viaHttp = await http(base, 'POST', '/keys', { tenant: 'acme', scopes: ['read', 'write'] }, auth(K.admin));
    expect(viaHttp.status).toBe(201);
    const key: string = viaHttp.json.key;
    // Use it for a write, so it passes through the edge, the command stream and the worker.
    const r = await http(base, 'POST', '/executions', { definition: { id: uniq('k'), steps: [{ id: 'a', type: 'transform', value: 1 }] } }, auth(key));
    expect(r.status).toBe(202);
    await until('completed', async () => (await http(base, 'GET', `/executions/${r.json.executionId}`, undefined, auth(key))).json?.status === 'COMPLETED');
    const secrets = [key, K.aWrite.key, K.admin.key].flatMap((k) => [k, secretOf(k)]);
    const hash = createHash('sha256').update(key).digest('hex');
    // The server's file store on disk: every stream (KV buckets, commands, the log) lives there.
    const contents = await until('the key hash written to disk', async () => {
      const all = await readAll(nats.storeDir);
      return all.includes(hash) ? all : undefined;
    }, 5000);
    for (const s of secrets) expect(contents.includes(s), 'a key or its secret part was found in the store').toBe(false);
  });
});

/** The random part of `ssk_<16 hex>_<secret>` (the secret itself may contain '_'). */
const secretOf = (key: string) => key.slice('ssk_'.length + 16 + 1);

async function readAll(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push((await readFile(join(entry.parentPath, entry.name)).catch(() => Buffer.alloc(0))).toString('latin1'));
  }
  return parts.join('\n');
}

describe('tenants', () => {
  it("tenant B cannot see, list, cancel, resume, signal or read the events or SSE of tenant A's execution (404)", async () => {
    const id = await waitingExecution(K.aWrite);
    for (const [method, path, body] of [
      ['GET', `/executions/${id}`],
      ['GET', `/executions/${id}/events`],
      ['GET', `/executions/${id}/events/stream`],
      ['GET', `/executions/${id}/checkpoints`],
      ['POST', `/executions/${id}/cancel`, {}],
      ['POST', `/executions/${id}/resume`, {}],
      ['POST', `/executions/${id}/signals/go`, { from: 'beta' }],
    ] as [string, string, unknown?][]) {
      const r = await send(method, path, body, auth(K.bWrite));
      expectProblem(r, 404, 'EXECUTION_NOT_FOUND');
      expect(r.text, 'the 404 must not differ from an unknown id').not.toContain('acme');
    }
    const listB = await http(base, 'GET', '/executions?limit=1000', undefined, auth(K.bWrite));
    expect(listB.json.executions.map((e: { executionId: string }) => e.executionId)).not.toContain(id);
    expectProblem(await http(base, 'GET', '/executions?tenant=acme', undefined, auth(K.bWrite)), 403, 'FORBIDDEN');
    const listA = await http(base, 'GET', '/executions?limit=1000', undefined, auth(K.aRead));
    expect(listA.json.executions.map((e: { executionId: string }) => e.executionId)).toContain(id);
    expect(listA.json.executions.every((e: { tenant?: string }) => e.tenant === 'acme')).toBe(true);
    const listAdmin = await http(base, 'GET', '/executions?limit=1000', undefined, auth(K.admin));
    expect(listAdmin.json.executions.map((e: { executionId: string }) => e.executionId)).toContain(id);

    // Nothing B tried reached it: still waiting, and A's own signal completes it with A's payload.
    expect((await http(base, 'GET', `/executions/${id}`, undefined, auth(K.aRead))).json.status).toBe('WAITING');
    expect((await http(base, 'POST', `/executions/${id}/signals/go`, { from: 'acme' }, auth(K.aWrite))).status).toBe(202);
    const done = await waitForStatusAs(id, K.aRead, 'COMPLETED');
    expect(done.steps.b.output).toEqual({ from: 'acme' });
  });

  it('workflow ids are per tenant: B neither reads nor versions A\'s, and registers its own', async () => {
    const wid = uniq('shared');
    const def = (marker: string) => ({ id: wid, steps: [{ id: 'a', type: 'transform', value: marker }] });
    expect((await http(base, 'POST', '/workflows', def('a1'), auth(K.aWrite))).json.version).toBe(1);
    expect((await http(base, 'POST', '/workflows', def('a2'), auth(K.aWrite))).json.version).toBe(2);
    expectProblem(await http(base, 'GET', `/workflows/${wid}`, undefined, auth(K.bWrite)), 404, 'WORKFLOW_NOT_FOUND');
    expect((await http(base, 'GET', '/workflows', undefined, auth(K.bWrite))).json.workflows.map((w: { id: string }) => w.id)).not.toContain(wid);
    expectProblem(await http(base, 'POST', '/executions', { workflowId: wid }, auth(K.bWrite)), 404, 'WORKFLOW_NOT_FOUND');
    const mine = await http(base, 'POST', '/workflows', def('b1'), auth(K.bWrite));
    expect(mine.status).toBe(201);
    expect(mine.json.version).toBe(1); // a version of B's own workflow, not A's third
    const a = await http(base, 'GET', `/workflows/${wid}`, undefined, auth(K.aRead));
    expect([a.json.version, a.json.definition.steps[0].value]).toEqual([2, 'a2']);
    const b = await http(base, 'GET', `/workflows/${wid}`, undefined, auth(K.bWrite));
    expect([b.json.version, b.json.definition.steps[0].value]).toEqual([1, 'b1']);
    // An admin reads another tenant's with ?tenant=
    expect((await http(base, 'GET', `/workflows/${wid}?tenant=acme`, undefined, auth(K.admin))).json.definition.steps[0].value).toBe('a2');
  });

  it('idempotency keys are per tenant', async () => {
    const key = uniq('idem');
    const body = { definition: { id: uniq('i'), steps: [{ id: 'a', type: 'transform', value: 1 }] } };
    const a1 = await http(base, 'POST', '/executions', body, { ...auth(K.aWrite), 'idempotency-key': key });
    const a2 = await http(base, 'POST', '/executions', body, { ...auth(K.aWrite), 'idempotency-key': key });
    const b1 = await http(base, 'POST', '/executions', body, { ...auth(K.bWrite), 'idempotency-key': key });
    expect(a2.json.executionId).toBe(a1.json.executionId);
    expect(b1.json.executionId).not.toBe(a1.json.executionId);
    expect(b1.headers.get('idempotent-replayed')).toBeNull();
  });

  it('caps the executions a tenant has pending or running with a clear 429; other tenants are unaffected', async () => {
    const capped = await makeKey('capped', ['read', 'write']);
    const svc = await startService({ worker: false, env: { HOST: '127.0.0.1', SMARTSPEC_TENANT_MAX_RUNNING: '1' } });
    // Stays RUNNING (a retry a minute away, held by its worker): a sleep would go WAITING, which the cap does not count.
    const slow = { definition: { id: uniq('slow'), steps: [{ id: 's', type: 'fail', message: 'later', retryable: true, retry: { maxAttempts: 2, initialDelayMs: 60_000 } }] } };
    const first = await http(svc.url, 'POST', '/executions', slow, auth(capped));
    expect(first.status).toBe(202);
    const over = expectProblem(await http(svc.url, 'POST', '/executions', slow, auth(capped)), 429, 'TENANT_LIMIT_REACHED');
    expect(over.detail).toContain("tenant 'capped'");
    expect(over.limit).toBe(1);
    expect((await http(svc.url, 'POST', '/executions', { definition: { id: uniq('ok'), steps: [{ id: 'a', type: 'transform', value: 1 }] } }, auth(K.bWrite))).status).toBe(202);
    await waitForStatusAs(first.json.executionId, capped, 'RUNNING');
    expect((await http(base, 'POST', `/executions/${first.json.executionId}/cancel`, {}, auth(capped))).status).toBe(202);
  });
});

async function waitForStatusAs(id: string, key: TestKey, status: string) {
  return until(`${id} ${status}`, async () => {
    const r = await http(base, 'GET', `/executions/${id}`, undefined, auth(key));
    return r.json?.status === status ? r.json : undefined;
  }, 15_000);
}

describe('the principal in the log', () => {
  it('ExecutionStarted, SignalReceived, ExecutionCancelled and ExecutionResumed name the key and tenant; replay verifies them', async () => {
    const principal = { tenant: 'acme', keyId: K.aWrite.keyId };
    const signalled = await waitingExecution(K.aWrite);
    expect((await http(base, 'POST', `/executions/${signalled}/signals/go`, { v: 1 }, auth(K.aWrite))).status).toBe(202);
    await waitForStatusAs(signalled, K.aRead, 'COMPLETED');

    const cancelled = await waitingExecution(K.aWrite);
    expect((await http(base, 'POST', `/executions/${cancelled}/cancel`, {}, auth(K.aWrite))).status).toBe(202);
    await waitForStatusAs(cancelled, K.aRead, 'CANCELLED');
    const resumed = await http(base, 'POST', `/executions/${cancelled}/resume`, {}, auth(K.aWrite));
    expect(resumed.status, resumed.text).toBe(202);
    await waitForStatusAs(cancelled, K.aRead, 'WAITING');

    const seen = async (id: string) => (await http(base, 'GET', `/executions/${id}/events`, undefined, auth(K.aRead))).json.events as { type: string; principal?: unknown }[];
    const evs = [...(await seen(signalled)), ...(await seen(cancelled))];
    for (const type of ['ExecutionStarted', 'SignalReceived', 'ExecutionCancelled', 'ExecutionResumed']) {
      const found = evs.filter((e) => e.type === type);
      expect(found.length, type).toBeGreaterThan(0);
      for (const e of found) expect(e.principal, type).toEqual(principal);
    }
    expect(evs.filter((e) => e.type === 'StepCompleted').every((e) => e.principal === undefined)).toBe(true);

    const log = await EventLog.open(nc);
    for (const id of [signalled, cancelled]) {
      const report = replayExecution(id, await log.read(id));
      expect(report.ok, JSON.stringify(report.events.filter((e) => !e.ok))).toBe(true);
      expect(report.principals).toBe('recorded');
    }

    // A log that drops the principal midway fails replay, even with its hash chain rebuilt.
    const records = await log.read(cancelled);
    const stripped = reseal(records.map((r) => (r.record.type === 'ExecutionCancelled' ? { ...r, record: withoutPrincipal(r.record) } : r)));
    const broken = replayExecution(cancelled, stripped);
    expect(broken.chainBreaks).toEqual([]);
    expect(broken.ok).toBe(false);
    expect(broken.events.find((e) => e.type === 'ExecutionCancelled')?.error).toMatch(/names no principal, required since #\d+/);
    // A malformed principal fails too.
    const malformed = reseal(records.map((r) => (r.record.type === 'SignalReceived' || r.record.type === 'ExecutionResumed' ? { ...r, record: { ...r.record, principal: { tenant: 'ACME!' } } } : r)) as StoredRecord[]);
    expect(replayExecution(cancelled, malformed).events.find((e) => e.type === 'ExecutionResumed')?.error).toMatch(/malformed principal/);
    // A log written before principals (none at all) still verifies, and says so.
    const legacy = replayExecution(cancelled, reseal(records.map((r) => ({ ...r, record: withoutPrincipal(r.record) }))));
    expect(legacy.ok, JSON.stringify(legacy.events.filter((e) => !e.ok))).toBe(true);
    expect(legacy.principals).toBe('absent');
  });
});

function withoutPrincipal<T extends object>(record: T): T {
  const { principal: _p, ...rest } = record as T & { principal?: unknown };
  return rest as T;
}

/** Recompute the hash chain, as someone rewriting the whole log would. */
function reseal(records: StoredRecord[]): StoredRecord[] {
  let prev = '';
  return records.map(({ seq, record }) => {
    const hash = hashRecord(prev, record);
    prev = hash;
    return { seq, record: { ...record, hash } };
  });
}

describe('property: random routes × random credentials', () => {
  it('never answers 2xx where the contract says no, and never 5xx', async () => {
    const credential = fc.constantFrom('none', 'malformed', 'revoked', 'otherTenant', 'readOnly', 'llmOnly');
    const malformed = fc.constantFrom('Bearer', 'Bearer  ', 'Token abc', 'Bearer ssk_', `Bearer ssk_${'0'.repeat(16)}_${'x'.repeat(43)}`, 'bearer ' + 'é', 'Basic YTpi');
    const route = fc.constantFrom(...ROUTES, ['GET', '/healthz'] as [string, string], ['GET', '/readyz'] as [string, string]);
    await checkProperty('auth routes × credentials', fc.asyncProperty(route, credential, malformed, async ([method, path, body], cred, bad) => {
      const headers: Record<string, string> =
        cred === 'none' ? {} : cred === 'malformed' ? { authorization: bad } : cred === 'revoked' ? auth(K.revoked) : cred === 'otherTenant' ? auth(K.bWrite) : cred === 'readOnly' ? auth(K.aRead) : auth(K.aLlm);
      const r = await send(method, path, body, headers);
      expect(r.status, `${method} ${path} as ${cred}: ${r.text}`).toBeLessThan(500);
      if (path === '/healthz' || path === '/readyz') return;
      if (cred === 'none' || cred === 'malformed' || cred === 'revoked') {
        expect(r.status, `${method} ${path} as ${cred}`).toBe(401);
        return;
      }
      const key = cred === 'otherTenant' ? K.bWrite : cred === 'readOnly' ? K.aRead : K.aLlm;
      const scope = requiredScope(method, path);
      if (!key.scopes.includes(scope) && !key.scopes.includes('admin')) {
        expect(r.status, `${method} ${path} as ${cred}`).toBe(403);
        return;
      }
      if (cred === 'otherTenant' && path.includes('/executions/ID')) expect(r.status, `${method} ${path} as ${cred}`).toBe(404);
      if (cred === 'otherTenant' && path === '/executions' && method === 'GET') expect(r.text).not.toContain(aWaiting);
    }), bounded(150, 20_000));
    // The property never touched A's execution.
    expect((await http(base, 'GET', `/executions/${aWaiting}`, undefined, auth(K.aRead))).json.status).toBe('WAITING');
  }, 60_000);
});
