/**
 * `smartspec workflows …` as a user runs it (child processes against this
 * file's nats-server), with a service whose edge sees what the CLI did.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCommand } from '../support/commands.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService } from '../support/service.js';

const nats = useNatsServer();
const startService = useService(nats);

/** `smartspec workflows …` as a child process: the service in this process keeps running meanwhile. */
const cli = (...args: string[]) => startCommand(['workflows', ...args], { NATS_URL: nats.url }).result;

describe('smartspec workflows', () => {
  it('registers, lists, disables, enables and deletes a workflow; the edge sees each change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-workflows-'));
    const file = join(dir, 'onboard.yaml');
    writeFileSync(file, 'id: onboard\ntriggers:\n  - subject: events.users.created\nsteps:\n  - id: hello\n    type: transform\n    value: hi\n');
    const svc = await startService({ worker: false });

    const registered = await cli('register', file);
    expect(registered.code, registered.stderr).toBe(0);
    expect(registered.stdout).toContain('registered onboard v1');

    const disabled = await cli('disable', 'onboard');
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(disabled.stdout).toMatch(/workflow onboard disabled \(since \S+Z\)/);
    expect((await http(svc.url, 'GET', '/workflows/onboard')).json).toMatchObject({ disabled: true });
    const refused = await http(svc.url, 'POST', '/executions', { workflowId: 'onboard' });
    expect(refused.status).toBe(409);
    expect(refused.json.code).toBe('WORKFLOW_DISABLED');

    const [listed, json] = await Promise.all([cli('list'), cli('list', '--json')]);
    expect(listed.stdout).toMatch(/^onboard\s+v1\s+1 steps\s+\S+Z\s+disabled since \S+Z$/m);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ id: 'onboard', version: 1, steps: 1, disabled: true, disabledAt: expect.any(String) })]);

    const enabled = await cli('enable', 'onboard', '--json');
    expect(JSON.parse(enabled.stdout)).toMatchObject({ id: 'onboard', disabled: false });
    expect((await http(svc.url, 'GET', '/workflows/onboard')).json.disabled).toBe(false);

    const removed = await cli('rm', 'onboard');
    expect(removed.stdout).toContain('workflow onboard deleted');
    expect((await http(svc.url, 'GET', '/workflows/onboard')).status).toBe(404);
    const again = await cli('show', 'onboard');
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("workflow 'onboard' not found");
  }, 120_000);

  it('refuses bad input with a message naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-workflows-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ id: 'bad', triggers: [{ subject: 'smartspec.cmd.start' }], steps: [{ id: 'a', type: 'transform', value: 1 }] }));
    const [bad, unknown, missing] = await Promise.all([cli('register', file), cli('pause', 'x'), cli('disable')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/triggers\[0\]\.subject.*reserved/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown workflows command 'pause'/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/usage: smartspec workflows/);
  }, 60_000);
});
