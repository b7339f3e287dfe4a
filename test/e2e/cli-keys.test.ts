/**
 * `smartspec keys create | list | revoke` as a user runs them (a child
 * process against this file's nats-server), and the key they print working,
 * then refused, on a running edge; and the CLI's own principal in the log.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { EventLog } from '../../src/log/eventLog.js';
import { connectNats } from '../../src/nats/connect.js';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { http, useService } from '../support/service.js';
import { until } from './http-helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/smartspec.mjs');
const nats = useNatsServer();
const startService = useService(nats);

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NATS_URL: nats.url }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('smartspec keys', () => {
  it('creates a key printed once, lists it without the key, revokes it; the edge follows', async () => {
    const created = cli('keys', 'create', '--tenant', 'acme', '--scopes', 'read,write', '--name', 'ci');
    expect(created.code, created.stderr).toBe(0);
    const key = /^(ssk_[0-9a-f]{16}_\S+)$/m.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    const keyId = key!.split('_')[1];
    expect(created.stdout).toContain('shown only this once');

    const svc = await startService({ worker: false });
    expect((await http(svc.url, 'GET', '/executions')).status).toBe(401);
    expect((await http(svc.url, 'GET', '/executions', undefined, { authorization: `Bearer ${key}` })).status).toBe(200);

    const listed = cli('keys', 'list');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${keyId}\\s+acme\\s+read,write`));
    expect(listed.stdout).not.toContain(key!.slice('ssk_'.length + 16 + 1)); // the secret part (it may itself contain '_')

    const revoked = cli('keys', 'revoke', keyId);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`key ${keyId} (tenant acme) revoked`);
    await until('the revoked key refused', async () => (await http(svc.url, 'GET', '/executions', undefined, { authorization: `Bearer ${key}` })).status === 401, 1000, 10);
    expect(cli('keys', 'list').stdout).toMatch(new RegExp(`${keyId}.*revoked`));
  }, 120_000);

  it('names what is wrong: an unknown scope, a missing tenant, an unknown key id', () => {
    const bad = cli('keys', 'create', '--tenant', 'acme', '--scopes', 'read,root');
    expect([bad.code, bad.stderr.trim()]).toEqual([2, "error: --scopes: unknown scope 'root'; scopes are read, write, admin, llm"]);
    expect(cli('keys', 'create', '--scopes', 'read').stderr).toContain('usage: smartspec keys create --tenant T');
    const unknown = cli('keys', 'revoke', '0123456789abcdef');
    expect([unknown.code, unknown.stderr.trim()]).toEqual([2, "error: API key '0123456789abcdef' not found"]);
  }, 120_000);

  it('records what the CLI does as the OS user on the default tenant', async () => {
    const id = `cli-principal-${process.pid}`;
    const file = join(await mkdtemp(join(tmpdir(), 'cli-principal-')), 'one.json');
    await writeFile(file, JSON.stringify({ id: 'one', steps: [{ id: 'a', type: 'transform', value: 1 }] }));
    const run = cli('run', file, '--id', id);
    expect(run.code, run.stderr).toBe(0);
    const nc = await connectNats(nats.url, 'cli-keys-test');
    try {
      const records = await (await EventLog.open(nc)).read(id);
      expect(records[0].record).toMatchObject({ type: 'ExecutionStarted', principal: { tenant: 'default', keyId: `cli:${userInfo().username}` } });
    } finally {
      await nc.close();
    }
  }, 60_000);
});
