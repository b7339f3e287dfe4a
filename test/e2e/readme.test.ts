/**
 * Every command the README shows, run as written (issue 12, item 5). The
 * commands are read from the README's ```sh blocks; each must match one rule
 * below, so a command added to the README fails this test until it is
 * handled here. They run inside a private network namespace, so the ports the
 * README names (3000, 4222) are its own; the embedded data folder is a
 * temporary one (SMARTSPEC_DATA_DIR). Placeholders are filled in from what
 * came before: `<id>` and `<executionId>` with the execution just started,
 * `...` with the passwords of the block, `sk-…` with a key for an
 * OpenAI-protocol server this test starts. Long-running commands (`serve`,
 * `edge`, `worker`, `nats-server`, `… &`) are started, seen ready, and stopped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readmeCommands, type ReadmeCommand } from '../support/readmeCommands.js';
import { netnsAvailable, startNetNs, type NetNs } from '../support/netns.js';
import { REPO, until } from '../support/processes.js';
import { killEmbeddedServer } from '../support/commands.js';
import { startFakeOpenAI, type FakeOpenAI } from '../integration/llm/support/fake-openai.js';

type Rule =
  | { kind: 'run'; exit?: number }
  | { kind: 'background'; ready: RegExp }
  | { kind: 'script' }
  | { kind: 'skip'; reason: string };

/** How each README command is checked, by what it starts with. */
const RULES: [RegExp, Rule][] = [
  [/^npm ci && npm test$/, { kind: 'skip', reason: 'reinstalls node_modules and runs this very suite' }],
  [/^npm ci$/, { kind: 'skip', reason: 'reinstalls node_modules under the running tests' }],
  [/^npm ci && node bin\/smartspec\.mjs run /, { kind: 'run' }], // the install is skipped, the run is not
  // Ready when it serves what the next command needs: `serve` consumes commands before its edge listens.
  [/^node bin\/smartspec\.mjs (serve|edge)( &)?$/, { kind: 'background', ready: /edge listening/ }],
  [/^node bin\/smartspec\.mjs worker( &)?$/, { kind: 'background', ready: /worker consuming commands/ }],
  [/^node bin\/smartspec\.mjs secrets /, { kind: 'script' }],
  [/^printf %s "\$TOKEN" \| node bin\/smartspec\.mjs secrets set/, { kind: 'script' }],
  [/^export SMARTSPEC_SECRETS_KEY=/, { kind: 'script' }],
  [/^(OPENAI_API_KEY=\S+ SMARTSPEC_LLM_DEFAULT_MODEL=\S+ )?node bin\/smartspec\.mjs /, { kind: 'run' }],
  [/^curl /, { kind: 'run' }],
  [/^nats (pub|sub) /, { kind: 'skip', reason: 'the nats CLI is not installed here' }],
  [/^SMARTSPEC_EDGE_PASSWORD=.* nats-server -c nats-auth\.conf$/, { kind: 'background', ready: /Server is ready/ }],
  [/^NATS_URL=nats:\/\/127\.0\.0\.1:4222 NATS_USER=(worker|edge) NATS_PASSWORD=\.\.\. node bin\/smartspec\.mjs (worker|edge)$/, { kind: 'background', ready: /edge listening|worker consuming commands/ }],
  // The event-driven walk-through (a block that publishes with the nats CLI: run only where it is installed).
  [/^nats-server -js -sd \S+ &$/, { kind: 'background', ready: /Server is ready/ }],
  [/^export NATS_URL=/, { kind: 'script' }],
  [/^smartspec (serve &|schedules create )/, { kind: 'run' }],
  [/^NATS_URL=nats:\/\/10\.0\.0\.1:4222,/, { kind: 'skip', reason: 'three hosts; the same command against the one-machine cluster runs in test/cluster/readme.test.ts' }],
];

/** Pages whose commands run here: the README and the reference moved out of it. */
const README_PAGES = ['README.md', 'docs/operations.md', 'docs/api.md', 'docs/nats.md', 'docs/event-log.md', 'docs/security.md'];

const natsCli = spawnSync('nats', ['--version']).status === 0;

function ruleFor(c: ReadmeCommand): Rule | undefined {
  if ((c.text.startsWith('nats pub') || c.text.startsWith('nats sub')) && natsCli) return { kind: 'run' };
  return RULES.find(([re]) => re.test(c.text))?.[1];
}

const PASSWORDS: Record<string, string> = { edge: 'readme-edge', worker: 'readme-worker', service: 'readme-service', integration: 'readme-integration' };

let commands: ReadmeCommand[];
let ns: NetNs;
let tmp: string;
let dataDir: string;
let fake: FakeOpenAI;
const background: ChildProcess[] = [];

beforeAll(async () => {
  // The README, then the reference pages its sections moved to, in the order they had there.
  const pages = await Promise.all(README_PAGES.map((f) => readFile(join(REPO, f), 'utf8')));
  commands = readmeCommands(pages.join('\n'));
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-readme-'));
  dataDir = join(tmp, 'data');
  if (netnsAvailable) ns = await startNetNs();
  // The last step of examples/llm-review.json asks for JSON of its schema: answer such requests so.
  fake = await startFakeOpenAI({
    name: 'readme',
    apiKey: 'sk-readme',
    models: ['gpt-4o-mini'],
    reply: (body: { response_format?: unknown; messages: { content: string }[] }) => ({ type: 'completion', content: body.response_format || body.messages.some((m) => /json/i.test(m.content)) ? '{"summary": "fine", "blockers": [], "approved": true}' : 'a reviewed spec' }),
  });
});

afterAll(async () => {
  for (const p of background) p.kill('SIGKILL');
  killEmbeddedServer(dataDir);
  ns?.close();
  await fake?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const baseEnv = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TMPDIR: tmpdir(), SMARTSPEC_DATA_DIR: dataDir, ...Object.fromEntries(Object.entries(PASSWORDS).map(([u, p]) => [`SMARTSPEC_${u.toUpperCase()}_PASSWORD`, p])) });

/** The command as written, with its placeholders filled in. */
function filled(text: string, vars: { id?: string }): string {
  let t = text.replace(/<id>|<executionId>/g, vars.id ?? 'NO-ID-YET').replace(/sk-…/g, 'sk-readme');
  // NATS_USER=x NATS_PASSWORD=... : that user's password
  t = t.replace(/NATS_USER=(\w+) NATS_PASSWORD=\.\.\./g, (_m, user: string) => `NATS_USER=${user} NATS_PASSWORD=${PASSWORDS[user]}`);
  // SMARTSPEC_X_PASSWORD=... : already in the environment, keep it
  t = t.replace(/(SMARTSPEC_\w+_PASSWORD)=\.\.\./g, (_m, v: string) => `${v}="$${v}"`);
  return t;
}

/** Run a shell command inside the namespace (or outside, `outside`), from `cwd`. */
function shell(cmd: string, opts: { cwd?: string; env?: Record<string, string>; outside?: boolean; input?: string } = {}): ChildProcess {
  const env = { ...baseEnv(), ...opts.env };
  const argv = opts.outside ? ['sh', ['-c', cmd]] as const : ['nsenter', [...ns.enter, 'sh', '-c', cmd]] as const;
  return spawn(argv[0], [...argv[1]], { cwd: opts.cwd ?? REPO, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
}

async function run(cmd: string, opts: Parameters<typeof shell>[1] = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = shell(cmd, opts);
  p.stdin!.end(opts.input ?? '');
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((res) => p.once('close', res));
  return { code, stdout, stderr };
}

async function startBackground(cmd: string, ready: RegExp, cwd?: string): Promise<{ stop(): Promise<void>; output(): string }> {
  const p = shell(cmd.replace(/\s*&$/, ''), { cwd });
  background.push(p);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await until(`${cmd} to be ready`, async () => {
    if (p.exitCode !== null) throw new Error(`${cmd} exited ${p.exitCode}: ${out}`);
    return ready.test(out);
  }, 60_000, 100);
  return {
    output: () => out,
    stop: async () => {
      if (p.exitCode !== null) return;
      process.kill(-p.pid!, 'SIGTERM'); // the group: sh and what it started
      await new Promise((r) => p.once('close', r));
    },
  };
}

describe('the README', () => {
  it('every command it shows is covered by a rule of this test', () => {
    expect(commands.length).toBeGreaterThan(15);
    const unhandled = commands.filter((c) => !ruleFor(c)).map((c) => `README.md:${c.line}: ${c.text}`);
    expect(unhandled).toEqual([]);
  });

  it.skipIf(!netnsAvailable)('runs every command it shows, with the outcome it promises', async () => {
    const vars: { id?: string } = {};
    const done: string[] = [];
    const blocks = new Map<number, ReadmeCommand[]>();
    for (const c of commands) blocks.set(c.block, [...(blocks.get(c.block) ?? []), c]);
    for (const [, block] of blocks) {
      // A block that publishes with the nats CLI depends on it throughout: not run without it (not installed here).
      if (!natsCli && block.some((c) => /^nats (pub|sub) /.test(c.text))) continue;
      const running: { stop(): Promise<void>; http: boolean }[] = [];
      // A block of shell state (export, then commands that use it) runs as one script.
      if (block.some((c) => ruleFor(c)!.kind === 'script')) {
        const script = ['set -e', ...block.map((c) => filled(c.text, vars))].join('\n');
        const r = await run(script, { env: { TOKEN: 'readme-token' } });
        expect(r, script).toMatchObject({ code: 0 });
        expect(r.stdout).toContain('secret API_TOKEN set');
        expect(r.stdout).toMatch(/^API_TOKEN$/m); // list: the name only
        expect(r.stdout).toContain('secret API_TOKEN removed');
        expect(r.stdout).not.toContain('readme-token');
        done.push(...block.map((c) => c.text));
        continue;
      }
      for (const c of block) {
        const rule = ruleFor(c)!;
        const cmd = filled(c.text.replace(/^npm ci && /, ''), vars);
        if (rule.kind === 'skip') continue;
        if (rule.kind === 'background') {
          const cwd = /nats-server -c nats-auth\.conf/.test(cmd) ? await authConfigDir() : undefined;
          // `serve`, then `edge`: alternatives on one port; the one before stops first.
          const http = /smartspec\.mjs (serve|edge)\b/.test(cmd);
          if (http) for (const r of running.filter((x) => x.http)) { await r.stop(); running.splice(running.indexOf(r), 1); }
          running.push({ ...(await startBackground(cmd, rule.ready, cwd)), http });
          done.push(c.text);
          continue;
        }
        const openai = /OPENAI_API_KEY/.test(cmd);
        // The OpenAI-protocol server of this test is outside the namespace: that command runs outside too, on its own data folder.
        const r = await run(cmd, openai ? { outside: true, env: { OPENAI_BASE_URL: fake.url, SMARTSPEC_DATA_DIR: join(tmp, 'llm-data') } } : {});
        const exit = /exits 1/.test(c.comment) ? 1 : 0;
        expect({ command: cmd, code: r.code, output: r.stdout.slice(-1500) + r.stderr }).toEqual({ command: cmd, code: exit, output: expect.any(String) });
        if (exit === 0 && !cmd.startsWith('curl')) expect(r.stderr, cmd).toBe('');
        const started = /^execution (\S+) \(workflow/m.exec(r.stdout)?.[1] ?? /"executionId":\s*"([^"]+)"/.exec(r.stdout)?.[1];
        if (started) vars.id = started;
        if (cmd.startsWith('curl -s -X POST')) expect(r.stdout).toMatch(/"status":\s*"PENDING"/);
        if (cmd.startsWith('curl -sN')) expect(r.stdout).toMatch(/event: ExecutionCompleted/); // the stream ends with the execution
        if (openai) expect(fake.chatRequests.length).toBeGreaterThan(0);
        done.push(c.text);
      }
      for (const s of running.reverse()) await s.stop();
    }
    expect(done.length).toBeGreaterThan(10);
  }, 300_000);
});

/** nats-auth.conf keeps its store in ./smartspec-nats-data: run it from a copy, not from the repository. */
async function authConfigDir(): Promise<string> {
  const dir = join(tmp, 'auth');
  await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
  await copyFile(join(REPO, 'nats-auth.conf'), join(dir, 'nats-auth.conf'));
  await copyFile(join(REPO, 'nats-users.conf'), join(dir, 'nats-users.conf'));
  return dir;
}
