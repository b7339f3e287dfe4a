/**
 * The CLI with values kept by reference (child processes, a nats-server with
 * the stock 1 MB max_payload): `status` shows the values, not refs; `replay`
 * verifies the stored values, and fails (exit 1) once one is replaced.
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Objm } from '@nats-io/obj';
import { describe, expect, it } from 'vitest';
import { PAYLOADS_BUCKET } from '../../src/nats/names.js';
import { isPayloadRef, type PayloadRef } from '../../src/payloads/refs.js';
import { def, useEngine } from '../support/engine.js';
import { useNatsServerWithDefaultPayload } from '../support/natsDefaultPayload.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const nats = useNatsServerWithDefaultPayload();
const fx = useEngine(nats);

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/smartspec.mjs'), ...args], { cwd: ROOT, env: { ...process.env, NATS_URL: nats.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => { child.kill('SIGKILL'); rej(new Error(`smartspec ${args.join(' ')} timed out\n${stdout}\n${stderr}`)); }, 30_000);
    child.on('close', (code) => { clearTimeout(timer); res({ code, stdout, stderr }); });
  });
}

describe('smartspec CLI and values kept by reference', () => {
  it('status shows the value behind a ref; replay verifies it, and fails once the object is replaced', async () => {
    const engine = await fx.engine();
    const input = { title: 'report', body: 'b'.repeat(1.5 * 1024 * 1024) };
    const runner = await engine.start({ input, definition: def({ id: 'cli-big', steps: [{ id: 'copy', type: 'transform', value: { title: '{{input.title}}', body: '{{input.body}}' } }] }) });
    expect((await runner.settled()).status).toBe('COMPLETED');
    const id = runner.executionId;

    const status = await cli(['status', id, '--json']);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).steps.copy.output).toEqual(input);

    const replay = await cli(['replay', id]);
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/replay verified \d+ events/);

    const records = await fx.log.read(id);
    const output = (records.find((r) => r.record.type === 'StepCompleted')!.record as { output: PayloadRef }).output;
    expect(isPayloadRef(output)).toBe(true);
    const bucket = await new Objm(fx.nc).open(PAYLOADS_BUCKET);
    await bucket.putBlob({ name: output.$ref.slice(`obj:${PAYLOADS_BUCKET}/`.length) }, new TextEncoder().encode(JSON.stringify({ title: 'forged', body: '' })));

    const tampered = await cli(['replay', id]);
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toMatch(/stored value FAIL the object behind obj:smartspec_payloads\/\S+ was altered/);
    expect(tampered.stdout).toContain('replay FAILED');
  }, 120_000); // four CLI processes, each compiling on start: slow on a busy machine
});
