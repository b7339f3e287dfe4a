/**
 * The package as people get it: `npm pack` of the package.json's `files`,
 * unpacked into a fresh project beside the dependencies it declares, whose
 * code uses both entry points
 * (the engine API and the HTTP client) against a running service and a real
 * nats-server, and whose TypeScript compiles against the shipped types.
 * The build is the repository's dist/ when it is current, else a fresh one
 * made in a temporary folder (./dist is never rewritten under other tests).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBuildFresh } from '../../bin/compiled.mjs';
import { useNatsServer } from '../support/nats.js';
import { REPO } from '../support/processes.js';
import { useService } from '../support/service.js';

const run = promisify(execFile);
const nats = useNatsServer();
const start = useService(nats);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const work = mkdtempSync(join(tmpdir(), 'smartspec-package-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The consumer's program: plain JavaScript importing the package by name. */
const APP = `
import { readFileSync } from 'node:fs';
import { connectNats, defaultExecutors, definitionJsonSchema, Engine, openApiDocument, validateDefinition, DefinitionError } from 'smartspec-orchestrator';
import { ConflictError, ExecutionFailedError, NotFoundError, SmartSpecClient, ValidationError } from 'smartspec-orchestrator/client';

const example = (name) => JSON.parse(readFileSync(new URL(\`./node_modules/smartspec-orchestrator/examples/\${name}.json\`, import.meta.url), 'utf8'));
const out = {};
const client = new SmartSpecClient({ baseUrl: process.env.BASE_URL });
const until = async (id, status) => { for (let i = 0; i < 400; i++) { if ((await client.get(id)).status === status) return; await new Promise((r) => setTimeout(r, 25)); } throw new Error(id + ' never ' + status); };
const caught = async (promise) => { try { await promise; return 'no error'; } catch (err) { return err; } };

// The engine API: validate a definition and host an execution in this process.
const forkJoin = validateDefinition(example('fork-join'));
const bad = await caught(Promise.resolve().then(() => validateDefinition({ id: 'x', steps: [] })));
out.definitionError = [bad instanceof DefinitionError, bad.code];
out.schemaTitle = definitionJsonSchema().title;
out.openapi = openApiDocument().openapi;
const nc = await connectNats(process.env.NATS_URL, 'package-consumer');
const engine = await Engine.create({ nc, executors: defaultExecutors() });
const runner = await engine.start({ definition: forkJoin, input: { feature: 'embedded' } });
out.engine = (await runner.done).status;
out.engineId = runner.executionId;

// The client: register, start, follow the events, await the result.
out.registered = (await client.workflows.register(forkJoin)).version;
out.workflows = (await client.workflows.list()).map((w) => w.id);
const { executionId } = await client.start({ workflowId: forkJoin.id, input: { feature: 'client' } });
out.events = [];
for await (const event of client.events(executionId)) out.events.push(event.type + ':' + event.seq);
out.result = await client.awaitResult(executionId);
out.output = (await client.get(executionId)).output;
out.listed = (await client.list({ workflowId: forkJoin.id, status: 'COMPLETED' })).some((e) => e.executionId === executionId);
out.embeddedSeenByApi = (await client.get(runner.executionId)).status;

// Signals and cancel.
const waits = { id: 'waits', steps: [{ id: 'approve', type: 'signal' }, { id: 'after', type: 'transform', value: { approved: '{{steps.approve.output.ok}}' } }] };
const signalled = (await client.start({ definition: waits })).executionId;
await until(signalled, 'WAITING');
out.signal = await client.signal(signalled, 'approve', { ok: true });
out.signalResult = await client.awaitResult(signalled);
const cancelled = (await client.start({ definition: waits })).executionId;
await until(cancelled, 'WAITING');
await client.cancel(cancelled, 'not needed');
const ended = await caught(client.awaitResult(cancelled));
out.cancelled = [ended instanceof ExecutionFailedError, ended.status];
const again = await caught(client.cancel(cancelled));
out.cancelAgain = [again instanceof ConflictError, again.status, again.code];

// A failure, then a resume with the corrected steps.
const failed = (await client.start({ definition: example('failing'), input: { version: '1.2' } })).executionId;
const failure = await caught(client.awaitResult(failed));
out.failed = [failure instanceof ExecutionFailedError, failure.status, failure.error?.message];
const { lastSeq } = await client.resume(failed, { fromStep: 'tests', steps: example('corrected') });
out.resumed = await client.awaitResult(failed, { afterSeq: lastSeq });

// Refusals are typed, with the problem's details.
const missing = await caught(client.get('no-such-execution'));
out.notFound = [missing instanceof NotFoundError, missing.status, missing.code];
const invalid = await caught(client.start({ workflowId: 'bad id!' }));
out.invalid = [invalid instanceof ValidationError, invalid.errors.map((e) => e.path)];

await engine.close();
await nc.close();
console.log(JSON.stringify(out));
`;

/** Type-checked against the shipped declarations: the @ts-expect-error lines fail if the types were \`any\`. */
const TYPED = `
import { SmartSpecClient, ValidationError, type Execution, type ExecutionEvent } from 'smartspec-orchestrator/client';
import { validateDefinition, type Definition, type RunningService } from 'smartspec-orchestrator';

export async function use(client: SmartSpecClient, service: RunningService): Promise<string> {
  const definition: Definition = validateDefinition({ id: 'w', steps: [{ id: 'a', type: 'transform', value: 1 }] });
  const execution: Execution = await client.get('id');
  // @ts-expect-error: a status is one of the six statuses
  const impossible: 'DONE' = execution.status;
  // @ts-expect-error: start needs a request object
  await client.start('w');
  for await (const event of client.events('id')) {
    const seq: number = event.seq satisfies ExecutionEvent['seq'];
    void seq;
  }
  try {
    await client.start({ workflowId: definition.id });
  } catch (err) {
    if (err instanceof ValidationError) return err.errors.map((e) => e.path).join() + err.code;
  }
  await service.stop();
  return String(impossible);
}
`;

describe('the npm package', () => {
  let tarball: string;
  let files: string[];
  const consumer = join(work, 'consumer');

  beforeAll(async () => {
    // Stage exactly what `files` names, with a current build.
    const stage = join(work, 'stage');
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { files: string[] };
    for (const entry of [...pkg.files.filter((f) => f !== 'dist'), 'package.json', 'README.md']) cpSync(join(REPO, entry), join(stage, entry), { recursive: true });
    if (isBuildFresh(REPO)) cpSync(join(REPO, 'dist'), join(stage, 'dist'), { recursive: true });
    else await run(process.execPath, [join(REPO, 'scripts/build.mjs'), '--out', join(stage, 'dist')], { cwd: REPO });
    const packed = JSON.parse((await run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: stage })).stdout);
    tarball = join(work, packed[0].filename);
    files = packed[0].files.map((f: { path: string }) => f.path);

    // Installed as npm lays it out: the package's folder, and each dependency it declares beside it
    // (linked to the repository's copy: no download; an undeclared one is missing, as it would be).
    const modules = join(consumer, 'node_modules');
    mkdirSync(modules, { recursive: true });
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run('tar', ['-xzf', tarball, '-C', work]);
    renameSync(join(work, 'package'), join(modules, 'smartspec-orchestrator'));
    const declared = JSON.parse(readFileSync(join(modules, 'smartspec-orchestrator/package.json'), 'utf8')).dependencies as Record<string, string>;
    for (const dep of Object.keys(declared)) {
      mkdirSync(dirname(join(modules, dep)), { recursive: true });
      symlinkSync(join(REPO, 'node_modules', dep), join(modules, dep), 'dir');
    }
  }, 300_000);

  it('ships the build, the bin, the schema and examples, and no tests, benchmarks or sources', () => {
    expect(files).toEqual(expect.arrayContaining([
      'package.json', 'bin/smartspec.mjs', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client/index.js', 'dist/src/client/index.d.ts',
      'dist/src/cli.js', 'dist/src/contracts/reference/index.html', 'dist/nats.conf', 'schemas/definition.json', 'examples/fork-join.json',
    ]));
    const stray = files.filter((f) => /^(test|bench|soak|src|machines|scripts)\//.test(f) || /\.test\.|\.ts$/.test(f.replace(/\.d\.ts$/, '')));
    expect(stray).toEqual([]);
  });

  it('the client imports nothing but its own modules (no node:, no packages), so it loads in a browser', () => {
    const clientDir = join(consumer, 'node_modules/smartspec-orchestrator/dist/src/client');
    const client = files.filter((f) => f.startsWith('dist/src/client/') && f.endsWith('.js'));
    expect(client.length).toBeGreaterThanOrEqual(3);
    for (const file of client) {
      const code = readFileSync(join(clientDir, file.slice('dist/src/client/'.length)), 'utf8');
      const imports = [...code.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm)].map((m) => m[1] ?? m[2]);
      expect(imports.filter((i) => !/^\.\/[\w-]+\.js$/.test(i)), file).toEqual([]);
    }
  });

  it('installs into a project and runs both entry points against a running service', async () => {
    const installed = JSON.parse(readFileSync(join(consumer, 'node_modules/smartspec-orchestrator/package.json'), 'utf8'));
    expect(installed.private).toBeUndefined();
    expect(Object.keys(installed.dependencies), 'tsx is a dev dependency only').not.toContain('tsx');

    const service = await start();
    writeFileSync(join(consumer, 'app.mjs'), APP);
    const { stdout } = await run(process.execPath, ['app.mjs'], { cwd: consumer, env: { PATH: process.env.PATH, BASE_URL: service.url, NATS_URL: nats.url }, timeout: 60_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);

    expect(out.definitionError).toEqual([true, 'INVALID_DEFINITION']);
    expect(out.schemaTitle).toBe('SmartSpec workflow definition');
    expect(out.openapi).toBe('3.1.0');
    expect(out.engine).toBe('COMPLETED');
    expect(out.embeddedSeenByApi).toBe('COMPLETED');
    expect(out.registered).toBeGreaterThanOrEqual(1);
    expect(out.workflows).toContain('spec-review');
    // Every record once, in order, up to the end: 12 for the fork-join (README).
    const types = out.events.map((e: string) => e.split(':')[0]);
    const seqs = out.events.map((e: string) => Number(e.split(':')[1]));
    expect(types[0]).toBe('ExecutionStarted');
    expect(types.at(-1)).toBe('ExecutionCompleted');
    expect(types).toHaveLength(12);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(out.events.filter((e: string) => e.startsWith('StepCompleted')).length).toBe(5);
    expect(out.result).toEqual(out.output);
    expect(out.result).toBeTruthy();
    expect(out.listed).toBe(true);
    expect(out.signal).toMatchObject({ signal: 'approve', stepId: 'approve' });
    expect(JSON.stringify(out.signalResult)).toContain('"approved":true');
    expect(out.cancelled).toEqual([true, 'CANCELLED']);
    expect(out.cancelAgain).toEqual([true, 409, 'INVALID_EXECUTION_STATE']);
    expect(out.failed).toEqual([true, 'FAILED', 'tests failed: flaky fixture']);
    expect(JSON.stringify(out.resumed)).toContain('"passed":42');
    expect(out.notFound).toEqual([true, 404, 'EXECUTION_NOT_FOUND']);
    expect(out.invalid).toEqual([true, ['body.workflowId']]);

    // The bin runs the compiled CLI: no tsx, no sources in the package.
    const status = await run(process.execPath, ['node_modules/smartspec-orchestrator/bin/smartspec.mjs', 'status', out.engineId, '--json'], { cwd: consumer, env: { PATH: process.env.PATH, NATS_URL: nats.url } });
    expect(JSON.parse(status.stdout)).toMatchObject({ executionId: out.engineId, status: 'COMPLETED' });
  }, 120_000);

  it("compiles a TypeScript consumer against the package's types", async () => {
    writeFileSync(join(consumer, 'typed.ts'), TYPED);
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, typeRoots: [join(REPO, 'node_modules/@types')], types: ['node'] },
      files: ['typed.ts'],
    }));
    const tsc = await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', consumer], { cwd: consumer }).catch((err: { stdout: string }) => err);
    expect('stdout' in tsc ? tsc.stdout : '').toBe('');
  }, 120_000);
});
