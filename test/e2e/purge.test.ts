/**
 * `smartspec purge --older-than D` as a user runs it, against a real
 * nats-server (NATS_URL): it prints what it purged, `--dry-run` purges
 * nothing, and an execution waiting for a signal is kept.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/smartspec.mjs');
const nats = useNatsServer();

interface Result { code: number | null; stdout: string; stderr: string }

function cli(args: string[], timeoutMs = 30_000): Promise<Result> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NATS_URL: nats.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => { child.kill('SIGKILL'); rej(new Error(`smartspec ${args.join(' ')} timed out\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.on('error', rej);
    child.on('close', (code) => { clearTimeout(timer); res({ code, stdout, stderr }); });
  });
}

describe('smartspec purge', () => {
  it('purges ended executions older than the duration, prints them, and keeps a waiting one', { timeout: 120_000 }, async () => {
    expect((await cli(['run', 'examples/fork-join.json', '--input', '{"feature":"x"}', '--id', 'purge-me'])).code).toBe(0);
    const approval = join(await mkdtemp(join(tmpdir(), 'smartspec-purge-')), 'approval.json');
    await writeFile(approval, JSON.stringify({ id: 'approval', steps: [{ id: 'approve', type: 'signal' }] }));
    const waiting = await cli(['run', approval, '--id', 'keep-me']);
    expect(waiting.stdout).toMatch(/^WAITING after /m);
    await new Promise((r) => setTimeout(r, 1_200)); // both are now older than 1 s

    const dry = await cli(['purge', '--older-than', '1s', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/would purge purge-me {2}COMPLETED {2}ended \S+ {2}\(\d+ records\)/);
    expect(dry.stdout).toMatch(/would purge 1 execution that ended before/);
    expect((await cli(['status', 'purge-me'])).code).toBe(0);

    const real = await cli(['purge', '--older-than', '1s']);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toMatch(/^purged purge-me {2}COMPLETED/m);
    expect(real.stdout).toMatch(/purged 1 execution that ended before \S+; \d+ kept/);
    const gone = await cli(['status', 'purge-me']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain("execution 'purge-me' not found");
    expect(real.stdout).not.toContain('keep-me');
    expect((await cli(['status', 'keep-me'])).stdout).toContain('WAITING');

    const bad = await cli(['purge', '--older-than', 'a while']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--older-than must be a duration such as 30d, 12h, 90m or 45s, got 'a while'");
  });
});
