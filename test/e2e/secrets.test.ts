/**
 * Secrets end to end: `smartspec secrets set` (sealed in the KV bucket), a
 * service process (`smartspec serve`, real nats-server, real HTTP) running a
 * workflow that uses a KV secret and an environment secret in an http header
 * and body and in an llm prompt, against upstreams that echo them back in
 * bodies and in errors. The values reach the upstreams, and appear nowhere
 * else: not in the stream's raw messages, any KV bucket, the service's log
 * output, /metrics, or any API response (the LLM proxy's included). Neither
 * does the server's own OPENAI_API_KEY, which an upstream error echoes.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../../src/nats/connect.js';
import { startFakeOpenAI, type FakeOpenAI } from '../integration/llm/support/fake-openai.js';
import { useNatsServer } from '../support/nats.js';
import { freePort, killAll, REPO, spawnCli, type Child } from '../support/processes.js';
import { http, waitForStatus } from '../support/service.js';
import { readSse } from './http-helpers.js';

const nats = useNatsServer();
const KEY = randomBytes(32).toString('hex');
const API_TOKEN = `tok-kv-${randomBytes(12).toString('hex')}`;
const PROMPT_SECRET = `envsecret-${randomBytes(12).toString('hex')}`;
const OPENAI_KEY = `sk-server-${randomBytes(16).toString('hex')}`;
const VALUES = { API_TOKEN, PROMPT_SECRET, OPENAI_KEY };

let upstream: Server;
const received: { authorization?: string; body: string }[] = [];
let fake: FakeOpenAI;
let service: Child;
let base = '';
/** Every API response body this test read, to search afterwards. */
const responses: string[] = [];

/** `smartspec secrets …` with the value on stdin. */
function cli(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['bin/smartspec.mjs', ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NATS_URL: nats.url, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    proc.stdin.end(stdin ?? '');
    proc.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });
}

async function get(path: string) {
  const r = await http(base, 'GET', path);
  responses.push(r.text);
  return r;
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ authorization: req.headers.authorization, body });
      if (req.url === '/deny') {
        // An upstream that echoes the credential in its error text.
        res.writeHead(401, { 'content-type': 'text/plain' }).end(`invalid token ${req.headers['x-token']} (Authorization: ${req.headers.authorization})`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ youSent: { authorization: req.headers.authorization, body } }));
    });
  });
  await new Promise<void>((res) => upstream.listen(0, '127.0.0.1', res));

  fake = await startFakeOpenAI({
    name: 'up',
    apiKey: OPENAI_KEY,
    reply: (body) => {
      const prompt: string = body.messages.at(-1).content;
      return prompt.startsWith('FAIL')
        ? { type: 'error', status: 400, message: `cannot serve '${prompt}' for key ${OPENAI_KEY}; Authorization: Bearer ${OPENAI_KEY}`, errorType: 'invalid_request_error' }
        : { type: 'completion', content: `you said: ${prompt}` };
    },
  });
}, 60_000);

afterAll(async () => {
  await killAll();
  await fake?.close();
  await new Promise<void>((res) => (upstream ? upstream.close(() => res()) : res()));
});

describe('smartspec secrets', () => {
  it('refuses to store without SMARTSPEC_SECRETS_KEY', async () => {
    const r = await cli(['secrets', 'set', 'API_TOKEN'], {}, API_TOKEN);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/SMARTSPEC_SECRETS_KEY is not set/);
  }, 60_000);

  it('sets from stdin, lists names only, removes', async () => {
    expect(await cli(['secrets', 'set', 'API_TOKEN'], { SMARTSPEC_SECRETS_KEY: KEY }, API_TOKEN + '\n')).toMatchObject({ code: 0 });
    expect(await cli(['secrets', 'set', 'OTHER'], { SMARTSPEC_SECRETS_KEY: KEY }, 'other-value')).toMatchObject({ code: 0 });
    const list = await cli(['secrets', 'list'], {});
    expect(list).toEqual({ code: 0, out: 'API_TOKEN\nOTHER\n' });
    expect(await cli(['secrets', 'rm', 'OTHER'], {})).toMatchObject({ code: 0 });
    expect((await cli(['secrets', 'list'], {})).out).toBe('API_TOKEN\n');
    expect(await cli(['secrets', 'rm', 'OTHER'], {})).toMatchObject({ code: 2, out: expect.stringMatching(/'OTHER' is not set/) });
    }, 120_000); // seven CLI processes, each a Node start: slow on a loaded machine
});

describe('a workflow using secrets, upstreams echoing them', () => {
  let id = '';
  beforeAll(async () => {
    const port = await freePort();
    service = spawnCli('serve', 'serve', {
      NATS_URL: nats.url,
      PORT: String(port),
      LOG_LEVEL: 'debug',
      HTTP_STEP_ALLOW: '127.0.0.1',
      SMARTSPEC_SECRETS_KEY: KEY,
      SMARTSPEC_SECRET_PROMPT_SECRET: PROMPT_SECRET,
      OPENAI_API_KEY: OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      SMARTSPEC_LLM_MAX_RETRIES: '0',
    });
    await service.waitForOutput(/edge listening/, 30_000);
    base = `http://127.0.0.1:${port}`;

    const u = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const definition = {
      id: 'uses-secrets',
      steps: [
        { id: 'call', type: 'http', request: { method: 'POST', url: `${u}/echo`, headers: { Authorization: 'Bearer {{secrets.API_TOKEN}}' }, body: { token: '{{secrets.API_TOKEN}}', note: '{{input.note}}' } } },
        { id: 'denied', type: 'http', request: { url: `${u}/deny`, headers: { 'x-token': '{{secrets.API_TOKEN}}', Authorization: 'Bearer {{secrets.API_TOKEN}}' } }, onError: 'continue' },
        { id: 'ask', type: 'llm', model: 'openai/gpt-test', prompt: 'Check {{secrets.PROMPT_SECRET}} and {{secrets.API_TOKEN}}' },
        { id: 'askFail', type: 'llm', model: 'openai/gpt-test', prompt: 'FAIL with {{secrets.PROMPT_SECRET}}', onError: 'continue' },
        { id: 'copy', type: 'transform', value: { t: '{{secrets.API_TOKEN}}', echoed: '{{steps.call.output.body}}' } },
      ],
    };
    const submit = await http(base, 'POST', '/executions', { definition, input: { note: 'n' } });
    responses.push(submit.text);
    expect(submit.status).toBe(202);
    id = submit.json.executionId;
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED'], 30_000);
    responses.push(JSON.stringify(done));
  }, 90_000);

  it('sends the real values to the upstreams', () => {
    expect(received[0]).toEqual({ authorization: `Bearer ${API_TOKEN}`, body: JSON.stringify({ token: API_TOKEN, note: 'n' }) });
    expect(received[1].authorization).toBe(`Bearer ${API_TOKEN}`);
    expect(fake.chatRequests[0].body.messages.at(-1).content).toBe(`Check ${PROMPT_SECRET} and ${API_TOKEN}`);
    expect(fake.chatRequests[1].body.messages.at(-1).content).toBe(`FAIL with ${PROMPT_SECRET}`);
  });

  it('records outputs and errors with the values redacted', async () => {
    const r = await get(`/executions/${id}`);
    expect(r.json.status).toBe('COMPLETED');
    const { steps } = r.json;
    expect(steps.call.output.body.youSent).toEqual({ authorization: 'Bearer [REDACTED:API_TOKEN]', body: JSON.stringify({ token: '[REDACTED:API_TOKEN]', note: 'n' }) });
    expect(steps.denied.output.error).toMatchObject({ code: 'HTTP_401' });
    expect(steps.denied.output.error.message).toContain('invalid token [REDACTED:API_TOKEN]');
    expect(steps.ask.output.text).toBe('you said: Check [REDACTED:PROMPT_SECRET] and [REDACTED:API_TOKEN]');
    expect(steps.askFail.output.error.code).toBe('LLM_UPSTREAM_REJECTED');
    expect(steps.askFail.output.error.message).toContain('[REDACTED:PROMPT_SECRET]');
    expect(steps.askFail.output.error.message).toMatch(/\[REDACTED:OPENAI_API_KEY\]|\[REDACTED\]/);
    expect(steps.copy.output.t).toBe('[REDACTED:API_TOKEN]');
  });

  it('the LLM proxy does not return an upstream error that echoes the key', async () => {
    const r = await http(base, 'POST', '/v1/chat/completions', { model: 'openai/gpt-test', messages: [{ role: 'user', content: 'FAIL now' }] });
    responses.push(r.text);
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/REDACTED/);
  });

  it('no value appears in the stream, the KV buckets, the log output, /metrics or any response', async () => {
    for (const path of [`/executions/${id}/events`, `/executions/${id}/checkpoints`, '/executions', '/workflows', '/metrics']) {
      expect((await get(path)).status, path).toBe(200);
    }
    const sse = await readSse(`${base}/executions/${id}/events/stream`, { timeoutMs: 10_000 });
    responses.push(JSON.stringify(sse));

    // Every message of every stream (the event log, the commands, every KV bucket), raw bytes.
    const nc = await connectNats(nats.url, 'secrets-test');
    const raw: string[] = [];
    try {
      const jsm = await jetstreamManager(nc);
      const names: string[] = [];
      for await (const si of jsm.streams.list()) names.push(si.config.name);
      expect(names).toEqual(expect.arrayContaining(['SMARTSPEC_EXECUTIONS', 'KV_smartspec_secrets']));
      for (const name of names) {
        const { state } = await jsm.streams.info(name);
        for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
          const m = await jsm.streams.getMessage(name, { seq }).catch(() => null);
          if (m) raw.push(`${name} ${m.subject} ${m.header ? JSON.stringify([...m.header]) : ''} ${Buffer.from(m.data).toString('latin1')}`);
        }
      }
    } finally {
      await nc.close();
    }
    expect(raw.some((m) => m.startsWith('KV_smartspec_secrets'))).toBe(true);
    expect(raw.some((m) => m.includes('[REDACTED:API_TOKEN]'))).toBe(true); // the outputs are there, redacted

    const places = { stream_and_kv: raw.join('\n'), log_output: service.output(), responses: responses.join('\n') };
    expect(places.log_output.length).toBeGreaterThan(0);
    for (const [where, text] of Object.entries(places)) {
      for (const [name, value] of Object.entries(VALUES)) {
        expect(text.includes(value), `${name} in ${where}`).toBe(false);
        expect(text.includes(Buffer.from(value).toString('base64')), `${name} (base64) in ${where}`).toBe(false);
      }
    }
  }, 60_000);
});
