/**
 * The command line's manners (issue 12): help and `<command> --help` with
 * examples (exit 0), `--version`, "did you mean" for a mistyped command or
 * option (exit 2), `validate` with every problem and its line and column,
 * `graph`, `schema`, `completion`; and against a real nats-server: event
 * numbers per execution, a duration on each step line and a closing line,
 * hints with the real id and step, `list` from the execution index (where the
 * CLI's executions are, like any other), `timeline`, and `status` loading
 * neither Koa, the LLM layer nor ioredis.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCommand } from '../support/commands.js';
import { useNatsServer } from '../support/nats.js';
import { useEngine } from '../support/engine.js';
import { REPO } from '../support/processes.js';
import { ExecutionIndex } from '../../src/registry/executionIndex.js';
import { STEP_TYPES } from '../../machines/definition.js';

// Each test spawns a few CLI processes (about 1.5 s each on an idle 2-core machine, far more under load).
vi.setConfig({ testTimeout: 120_000 });

const nats = useNatsServer();
const fx = useEngine(nats);
let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(join(tmpdir(), 'smartspec-cli-cmds-')); });
afterAll(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

const offline = (args: string[]) => runCommand(args, { NATS_URL: 'nats://127.0.0.1:1' }); // never reached: these commands need no NATS
const cli = (args: string[], env: Record<string, string> = {}) => runCommand(args, { NATS_URL: nats.url, ...env });
const uid = (p: string) => `${p}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

describe('help, version, mistakes', () => {
  it('--help and help exit 0 with every command; <command> --help gives that command its own examples', async () => {
    const [help, runHelp, statusHelp] = await Promise.all([offline(['--help']), offline(['run', '--help']), offline(['help', 'status'])]);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    for (const c of ['run', 'resume', 'status', 'list', 'events', 'timeline', 'graph', 'validate', 'schema', 'completion', 'purge', 'keys', 'secrets', 'serve', 'nats']) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(runHelp).toMatchObject({ code: 0, stderr: '' });
    expect(runHelp.stdout).toMatch(/^smartspec run <file>/);
    expect(runHelp.stdout).toMatch(/Examples:\n  smartspec run examples\/fork-join\.json/);
    expect(statusHelp.stdout).toMatch(/^smartspec status <id>/);
    expect(statusHelp.stdout).not.toBe(runHelp.stdout);
  });

  it('--version prints the package version, exit 0', async () => {
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(await offline(['--version'])).toMatchObject({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it('an unknown command: "did you mean", exit 2; an unknown option names the command and the closest option', async () => {
    const [typo, option] = await Promise.all([offline(['stauts', 'x']), offline(['list', '--statsu', 'FAILED'])]);
    expect(typo).toMatchObject({ code: 2, stdout: '' });
    expect(typo.stderr).toBe("error: unknown command 'stauts': did you mean 'smartspec status'? (smartspec help lists them)\n");
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/smartspec list has no option --statsu: did you mean --status\?/);
  });

  it('validate: every problem at once, each with line and column; exit 1; a valid file exits 0', async () => {
    const bad = join(tmp, 'bad.json');
    await writeFile(bad, ['{', '  "id": "bad",', '  "steps": [', '    { "id": "a", "type": "tranform", "value": 1 },', '    { "id": "b", "type": "http", "request": { "url": "http://x", "method": "FETCH" } },', '    { "id": "a", "type": "transform", "value": "{{steps.nope.output}}" }', '  ]', '}'].join('\n'));
    const syntax = join(tmp, 'syntax.json');
    await writeFile(syntax, '{\n  "id": "x",\n  "steps": [\n    { "id": "a", "type": }\n  ]\n}\n');
    const [r, s, ok] = await Promise.all([offline(['validate', bad]), offline(['validate', syntax]), offline(['validate', 'examples/fork-join.json'])]);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n')).toEqual([
      `${bad}:4:26: steps[0].type: unknown step type 'tranform': did you mean 'transform'? (one of ${STEP_TYPES.join(', ')})`,
      expect.stringMatching(new RegExp(`^${bad}:5:\\d+: steps\\[1\\]\\.request\\.method: `)),
      `${bad}:6:13: steps[2].id: duplicate step id 'a' (also steps[0])`,
      expect.stringMatching(new RegExp(`^${bad}:6:\\d+: steps\\[2\\]\\.value: \\{\\{steps\\.nope\\.output\\}\\} refers to unknown step 'nope'$`)),
      `4 problems in ${bad}`,
    ]);
    expect(s).toMatchObject({ code: 1, stdout: `${syntax}:4:26: ${syntax} is not valid JSON: Unexpected token '}'\n1 problem in ${syntax}\n` });
    expect(ok).toMatchObject({ code: 0, stdout: 'examples/fork-join.json: valid (workflow spec-review, 5 steps)\n' });
  });

  it('completion bash: completes command names and a command\'s options in a real bash', async () => {
    const r = await offline(['completion', 'bash']);
    expect(r.code).toBe(0);
    const script = join(tmp, 'smartspec.bash');
    await writeFile(script, r.stdout);
    const complete = (words: string[]) => spawnSync('bash', ['-c', `source "${script}"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _smartspec; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(complete(['smartspec', 'ti'])).toEqual(['timeline']);
    expect(complete(['smartspec', 'list', '--wor'])).toEqual(['--workflow']);
    expect(complete(['smartspec', 'nats', ''])).toEqual(expect.arrayContaining(['status', 'stop']));
  });
});

describe('against NATS', () => {
  let forkJoinId = '';
  it('run: events numbered from #1 in each execution, a duration on each step end, a closing line; list finds it in the index', async () => {
    await cli(['run', 'examples/fork-join.json', '--input', '{"feature":"warm-up"}']); // an earlier execution in the stream
    const id = (forkJoinId = uid('fj'));
    const r = await cli(['run', 'examples/fork-join.json', '--id', id, '--input', '{"feature":"x"}']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const numbered = r.stdout.split('\n').filter((l) => l.startsWith('#'));
    expect(numbered.map((l) => /^#(\d+)/.exec(l)![1])).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 1)));
    for (const l of numbered.filter((l) => /StepCompleted/.test(l))) expect(l).toMatch(/StepCompleted\s+\w+\s+\d+(\.\d+)? (ms|s)\s/);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^COMPLETED in \d+(\.\d+)? (ms|s) · 5 steps$/);

    // The CLI's execution is in the index, as one the edge started would be.
    const index = await ExecutionIndex.open(fx.nc);
    const entry = await index.get(id);
    index.close();
    expect(entry).toMatchObject({ executionId: id, workflowId: 'spec-review', status: 'COMPLETED', tenant: 'default' });
    expect(entry!.firstSeq).toBeGreaterThan(1);
    const [list, others] = await Promise.all([cli(['list', '--workflow', 'spec-review', '--status', 'completed']), cli(['list', '--workflow', 'no-such-workflow', '--json'])]);
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+spec-review\\s+COMPLETED\\s+\\S+\\s+\\d`, 'm'));
    expect(JSON.parse(others.stdout)).toEqual({ executions: [] });

    // events: the same numbers and durations, read back from the log
    const events = await cli(['events', id, '--from', '11']);
    expect(events.stdout.split('\n').filter(Boolean).map((l) => l.slice(0, 3))).toEqual(['#11', '#12']);
  });

  it('timeline: the three branches of the fork overlap, and merge starts after all three end', async () => {
    const id = forkJoinId;
    const r = await cli(['timeline', id], { COLUMNS: '200' });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^${id}  spec-review  COMPLETED in `));
    const bar = (step: string) => {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${step} `))!;
      const inner = line.slice(line.indexOf('│') + 1, line.lastIndexOf('│'));
      return { from: inner.search(/[█░]/), to: inner.length - inner.split('').reverse().join('').search(/[█░]/) };
    };
    const branches = ['security', 'perf', 'legal'].map(bar);
    const merge = bar('merge');
    const latestStart = Math.max(...branches.map((b) => b.from));
    for (const b of branches) expect(b.to).toBeGreaterThanOrEqual(latestStart); // each still runs when the last one starts
    expect(merge.from).toBeGreaterThanOrEqual(Math.max(...branches.map((b) => b.to)) - 1);
    expect(r.stdout).toMatch(/^perf\s+│\s*░+/m); // a sleep waits: shaded
  });

  it('status loads neither Koa, the LLM layer, the engine nor ioredis; it shows a duration on each step', async () => {
    const id = forkJoinId;
    const trace = join(tmp, 'status.trace');
    const r = await cli(['status', id], { NODE_OPTIONS: `--import=${join(REPO, 'test/support/traceImports.mjs')}`, TRACE_IMPORTS_FILE: trace });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    for (const step of ['draft', 'security', 'perf', 'legal', 'merge']) expect(r.stdout).toMatch(new RegExp(`^  ${step}\\s+done\\s+\\d+(\\.\\d+)? (ms|s)\\s`, 'm'));
    const loaded = [...new Set((await readFile(trace, 'utf8')).split('\n'))];
    // the trace works (the bin runs the build in dist/ when it is fresh, else the sources)
    expect(loaded.some((u) => u === `file://${REPO}/src/cli/commands/inspect.ts` || u === `file://${REPO}/dist/src/cli/commands/inspect.js`)).toBe(true);
    const forbidden = loaded.filter((u) => /\/node_modules\/(koa|@koa|ioredis|openai|koa-[^/]+)\/|\/src\/(llm|edge\/(app|routes|middleware)|worker)\//.test(u));
    expect(forbidden).toEqual([]);
  });
  it('a failure names the real id and step in its hint; a wait names the real signal; graph <id> colours the failed step', async () => {
    const id = uid('rel');
    const failed = await cli(['run', 'examples/failing.json', '--id', id, '--input', '{"version":"1"}']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain(`resume with: smartspec resume ${id} --from-step tests [--steps corrected.json]`);
    expect(failed.stdout).toMatch(/StepFailed\s+tests\s+\d+ ms\s.*✗ tests failed: flaky fixture \(retry in /);
    expect(failed.stdout.trim().split('\n').at(-1)).toMatch(/^FAILED after .+ · 3 of 5 steps$/);
    const graph = await cli(['graph', id]);
    const testsNode = /^\s+(s\d+)\["tests<br\/>/m.exec(graph.stdout)![1];
    expect(graph.stdout).toMatch(new RegExp(`^  class ${testsNode} failed$`, 'm'));

    const waitId = uid('wait');
    const file = join(tmp, 'approval.json');
    await writeFile(file, JSON.stringify({ id: 'approval', steps: [{ id: 'prepare', type: 'transform', value: 1 }, { id: 'approve', type: 'signal', name: 'go-ahead' }] }));
    const waiting = await cli(['run', file, '--id', waitId]);
    expect(waiting.code).toBe(0);
    expect(waiting.stdout).toMatch(/^WAITING after .+ · 1 of 2 steps$/m);
    expect(waiting.stdout).toContain(`waiting for signal go-ahead: smartspec signal ${waitId} go-ahead --payload '{}'`);
    const signalled = await cli(['signal', waitId, 'go-ahead', '--payload', '{"by":"ana"}']);
    expect(signalled.code).toBe(0);
    expect(signalled.stdout).toMatch(/^#5\s+SignalReceived/m); // numbering carries on from the history before
    expect(signalled.stdout.trim().split('\n').at(-1)).toMatch(/^COMPLETED in .+ · 2 steps$/);
  });

});
