/**
 * cluster/README.md, run as written: its commands start a 3-node cluster from
 * the shipped files (cluster/node-N.conf, which include ../nats-users.conf),
 * wait for the metadata leader as it says, run the service against all three
 * with NATS_REPLICAS=3 and see an execution complete, then start the
 * flags example. The commands run inside a private network namespace, so the
 * ports the README names (4222-4224, 6222-6224, 3000, 14222) are its own, and
 * from a temporary copy of the files, so the stores (relative to where the
 * servers start) land there. Its `export` lines run as written (the route
 * password from openssl), the client passwords it leaves as `...` get test values.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readmeCommands, type ReadmeCommand } from '../support/readmeCommands.js';
import { netnsAvailable, startNetNs, type NetNs } from '../support/netns.js';
import { REPO, until } from '../support/processes.js';

let ns: NetNs;
let tmp: string;
let blocks: ReadmeCommand[][];
const started: ChildProcess[] = [];

beforeAll(async () => {
  const commands = readmeCommands(await readFile(join(REPO, 'cluster/README.md'), 'utf8'));
  blocks = [];
  for (const c of commands) (blocks[c.block] ??= []).push(c);
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-cluster-readme-'));
  await mkdir(join(tmp, 'cluster'));
  for (const n of [1, 2, 3]) await copyFile(join(REPO, `cluster/node-${n}.conf`), join(tmp, `cluster/node-${n}.conf`));
  await copyFile(join(REPO, 'nats-users.conf'), join(tmp, 'nats-users.conf'));
  if (netnsAvailable) ns = await startNetNs();
});

afterAll(async () => {
  for (const p of started) if (p.exitCode === null) try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ }
  ns?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const PASSWORDS = 'SMARTSPEC_EDGE_PASSWORD=cr-edge SMARTSPEC_WORKER_PASSWORD=cr-worker SMARTSPEC_SERVICE_PASSWORD=cr-service SMARTSPEC_INTEGRATION_PASSWORD=cr-integration';

type Kind = 'export' | 'servers' | 'service' | 'three hosts' | 'flags';

/** What each block of the page is, by what it says. */
function kindOf(block: ReadmeCommand[]): Kind | undefined {
  const texts = block.map((c) => c.text);
  if (texts.some((t) => /nats-[abc]\b/.test(t))) return 'three hosts'; // settings for three machines: not run here
  if (texts.every((t) => t.startsWith('export '))) return 'export';
  if (texts.length === 3 && texts.every((t, i) => t === `nats-server -c cluster/node-${i + 1}.conf &`)) return 'servers';
  if (texts.length === 1 && /^NATS_URL=nats:\/\/127\.0\.0\.1:4222,.* npx smartspec serve$/.test(texts[0])) return 'service';
  if (texts.length === 1 && /^nats-server -c cluster\/node-1\.conf -a 127\.0\.0\.1 -p 14222 /.test(texts[0])) return 'flags';
  return undefined;
}

const blocksOf = (kind: Kind) => blocks.filter((b) => kindOf(b) === kind);

/** The page's export lines, the client passwords (its `...`) given test values; the others run as written. */
const exportLines = () =>
  blocksOf('export').flat().map((c) => (/SMARTSPEC_EDGE_PASSWORD=\.\.\./.test(c.text) ? `export ${PASSWORDS}` : c.text)).join('\n');

/** A script in the namespace, from `cwd`, in its own process group; its output is collected. */
function inNs(script: string, cwd: string): { proc: ChildProcess; output(): string; stop(): Promise<void> } {
  const proc = spawn('nsenter', [...ns.enter, 'sh', '-c', script], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TMPDIR: tmpdir(), NPM_CONFIG_OFFLINE: 'true', SMARTSPEC_DATA_DIR: join(tmp, 'data') },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  started.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    proc,
    output: () => out,
    stop: async () => {
      if (proc.exitCode !== null) return;
      const closed = new Promise((r) => proc.once('close', r));
      process.kill(-proc.pid!, 'SIGTERM');
      await closed;
    },
  };
}

async function runInNs(script: string, cwd: string): Promise<string> {
  const s = inNs(script, cwd);
  const code = await new Promise<number | null>((r) => s.proc.once('close', r));
  if (code !== 0) throw new Error(`exit ${code}: ${script}\n${s.output()}`);
  return s.output();
}

describe('cluster/README.md', () => {
  it('every block of the page is one this test knows: exports, the three servers, the service, three-host settings, the flags example', () => {
    expect(blocks.filter((b) => !kindOf(b)).map((b) => b.map((c) => `cluster/README.md:${c.line}: ${c.text}`))).toEqual([]);
    for (const kind of ['servers', 'service', 'flags'] as const) expect(blocksOf(kind), kind).toHaveLength(1);
    expect(blocksOf('export').flat().some((c) => /SMARTSPEC_EDGE_PASSWORD=\.\.\./.test(c.text))).toBe(true);
  });

  it.skipIf(!netnsAvailable)('the cluster starts as written, elects a leader, and the service runs an execution on it with 3 replicas; the flags example starts', async () => {
    const cluster = inNs([exportLines(), ...blocksOf('servers')[0].map((c) => c.text), 'wait'].join('\n'), tmp);
    await until('the JetStream metadata leader', async () => {
      if (cluster.proc.exitCode !== null) throw new Error(cluster.output());
      return /JetStream cluster new metadata leader/.test(cluster.output());
    }, 60_000, 200);
    expect(cluster.output()).not.toMatch(/\[FTL\]/); // (route errors while the others start are normal)

    const service = inNs([exportLines(), blocksOf('service')[0][0].text].join('\n'), REPO);
    await until('the service to listen', async () => {
      if (service.proc.exitCode !== null) throw new Error(service.output());
      return /edge listening/.test(service.output()) && /worker consuming commands/.test(service.output());
    }, 90_000, 200);
    const submitted = await runInNs(`curl -s -X POST localhost:3000/executions -H 'content-type: application/json' -d "{\\"definition\\": $(cat examples/fork-join.json), \\"input\\": {\\"feature\\": \\"cluster\\"}}"`, REPO);
    const id = (JSON.parse(submitted) as { executionId: string }).executionId;
    await until('the execution to complete on the cluster', async () => (JSON.parse(await runInNs(`curl -s localhost:3000/executions/${id}`, REPO)) as { status: string }).status === 'COMPLETED', 60_000, 500);
    await service.stop();
    expect(service.output()).not.toMatch(/"level":50/); // no error logged
    await cluster.stop();

    const flags = inNs([exportLines(), blocksOf('flags')[0][0].text].join('\n'), tmp);
    await until('the flags example to be ready', async () => {
      if (flags.proc.exitCode !== null) throw new Error(flags.output());
      return /Server is ready/.test(flags.output());
    }, 30_000, 200);
    expect(flags.output()).toMatch(/Listening for client connections on 127\.0\.0\.1:14222/);
    expect(flags.output()).not.toMatch(/Duplicate 'store_dir'/);
    await flags.stop();
  }, 240_000);
});
