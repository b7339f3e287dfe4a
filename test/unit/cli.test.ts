/**
 * The pure parts of the command line: durations and the closing line, the
 * terminal Gantt chart, the Mermaid flowchart, "did you mean", positions of
 * a definition's problems in its text, the completion scripts and the JSON
 * Schema of definitions. The commands themselves: test/e2e/cli-commands.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { closingLine, formatDuration } from '../../src/cli/format.js';
import { ganttLines } from '../../src/cli/timeline.js';
import { mermaidFlowchart } from '../../src/cli/mermaid.js';
import { closest } from '../../src/suggest.js';
import { positionsOf } from '../../src/definition/positions.js';
import { bashCompletion, zshCompletion } from '../../src/cli/commands/completion.js';
import { definitionJsonSchema } from '../../src/contracts/definitionSchema.js';
import { COMMANDS } from '../../src/cli/commandTable.js';
import { def } from '../support/engine.js';
import { STEP_TYPES } from '../../machines/definition.js';
import type { StoredRecord } from '../../src/log/records.js';

describe('durations and the closing line', () => {
  it('formats durations for people', () => {
    expect([4, 99, 430, 2104, 12_500, 200_000, 7_500_000].map(formatDuration)).toEqual(['4 ms', '99 ms', '0.43 s', '2.10 s', '12.5 s', '3 min 20 s', '2 h 5 min']);
  });

  it('COMPLETED in 0.43 s · 5 steps · 1,064 tokens; a failure says how far it got', () => {
    expect(closingLine({ status: 'COMPLETED', ms: 430, stepsDone: 5, stepsTotal: 5, tokens: 1064 })).toBe('COMPLETED in 0.43 s · 5 steps · 1,064 tokens');
    expect(closingLine({ status: 'FAILED', ms: 2104, stepsDone: 3, stepsTotal: 5, tokens: 0 })).toBe('FAILED after 2.10 s · 3 of 5 steps');
  });
});

describe('did you mean', () => {
  it('finds a typo, a swap or a prefix, and nothing for a stranger', () => {
    const known = ['run', 'resume', 'status', 'list', 'timeline'];
    expect(closest('stauts', known)).toBe('status');
    expect(closest('resme', known)).toBe('resume');
    expect(closest('time', known)).toBe('timeline');
    expect(closest('frobnicate', known)).toBeUndefined();
    expect(closest('tranform', STEP_TYPES)).toBe('transform');
  });
});

const t0 = Date.parse('2026-12-01T10:00:00.000Z');
const forkJoin = def({ id: 'fj', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'sleep', durationMs: 10 }, { id: 'c', type: 'transform', value: 2, retry: { maxAttempts: 2, initialDelayMs: 100 } }, { id: 'd', type: 'transform', value: 3 }], parallel: [['b', 'c']] });
function records(events: [number, string, Record<string, unknown>?][]): StoredRecord[] {
  return events.map(([ms, type, extra], i) => ({ seq: 100 + i, record: { type, executionId: 'x', workflowId: 'fj', at: new Date(t0 + ms).toISOString(), state: {}, hash: '', ...(type === 'ExecutionStarted' ? { definition: forkJoin, input: {} } : {}), ...extra } as never }));
}

describe('the timeline', () => {
  it('draws parallel attempts side by side, a retry after its backoff, a waiting step shaded, the join after them', () => {
    const lines = ganttLines(records([
      [0, 'ExecutionStarted'],
      [0, 'StepStarted', { stepId: 'a', attempt: 1 }],
      [100, 'StepCompleted', { stepId: 'a', output: 1 }],
      [100, 'StepStarted', { stepId: 'b', attempt: 1 }],
      [100, 'StepStarted', { stepId: 'c', attempt: 1 }],
      [200, 'StepFailed', { stepId: 'c', attempt: 1, error: { message: 'boom' }, retryInMs: 100 }],
      [300, 'StepStarted', { stepId: 'c', attempt: 2 }],
      [400, 'StepCompleted', { stepId: 'c', output: 2 }],
      [500, 'StepCompleted', { stepId: 'b', output: {} }],
      [500, 'StepStarted', { stepId: 'd', attempt: 1 }],
      [1000, 'StepCompleted', { stepId: 'd', output: 3 }],
      [1000, 'ExecutionCompleted', { output: 3 }],
    ]), { now: t0 + 5000, columns: 48 }); // a 20-column bar: 50 ms a column
    const bar = (label: string) => { const l = lines.find((x) => x.startsWith(`${label} `))!; return l.slice(l.indexOf('│') + 1, l.lastIndexOf('│')); };
    expect(bar('a')).toBe('██                  ');
    expect(bar('b')).toBe('  ░░░░░░░░          ');
    expect(bar('c')).toBe('  ██                ');
    expect(bar('c #2')).toBe('    ··██            ');
    expect(bar('d')).toBe('          ██████████');
    expect(lines.find((l) => l.startsWith('c '))).toMatch(/│\s+0\.10 s ✗ boom$/);
    expect(lines[0]).toMatch(/^\s+0\s+1\.00 s$/);
  });

  it('a step still running reaches up to now', () => {
    const lines = ganttLines(records([[0, 'ExecutionStarted'], [0, 'StepStarted', { stepId: 'a', attempt: 1 }]]), { now: t0 + 1000, columns: 48 });
    expect(lines.find((l) => l.startsWith('a '))).toMatch(/│█{20}│\s+1\.00 s …$/);
  });
});

describe('the Mermaid flowchart', () => {
  it('a parallel group is a fork and a join; step ids that are Mermaid keywords are safe; phases colour the steps', () => {
    const d = def({ id: 'w', steps: [{ id: 'end', type: 'transform', value: 1 }, { id: 'x-1', type: 'fail', message: 'no' }, { id: 'y', type: 'signal' }], parallel: [['x-1', 'y']] });
    const text = mermaidFlowchart(d, { end: 'done', 'x-1': 'failed', y: 'waiting' });
    const lines = text.split('\n');
    expect(lines).toEqual(expect.arrayContaining(['flowchart TD', '  s0["end<br/><small>transform</small>"]', '  start --> s0', '  s0 --> fork1', '  fork1 --> s1', '  fork1 --> s2', '  s1 --> join1', '  s2 --> join1', '  join1 --> finish', '  class s0 done', '  class s1 failed', '  class s2 active']));
    expect(text).not.toMatch(/^\s+end\b/m);
  });
});

describe('positions of problems in the text', () => {
  it('finds the line and column of a path in JSON and in YAML, or of the nearest enclosing value', () => {
    const json = positionsOf('{\n  "id": "w",\n  "steps": [\n    { "id": "a", "type": "x" }\n  ]\n}')!;
    expect(json('steps[0].type')).toEqual({ line: 4, column: 26 });
    expect(json('steps[0].missing')).toEqual({ line: 4, column: 5 });
    const yaml = positionsOf('id: w\nsteps:\n  - id: a\n    type: x\n')!;
    expect(yaml('steps[0].type')).toEqual({ line: 4, column: 11 });
    expect(positionsOf('{ "broken": ')).toBeUndefined();
  });
});

describe('completion and schema', () => {
  it('the completion scripts know every command and its options', () => {
    const bash = bashCompletion();
    const zsh = zshCompletion();
    for (const c of COMMANDS) {
      expect(bash).toContain(`    ${c.name}) COMPREPLY=`);
      expect(zsh).toContain(`    ${c.name}) _arguments`);
      for (const o of Object.keys(c.options)) expect(bash).toMatch(new RegExp(`    ${c.name}\\) COMPREPLY=\\(\\$\\(compgen -W "[^"]*--${o}\\b`));
    }
  });

  it('the JSON Schema of definitions is generated from the zod schema: one branch per step type, defaults optional', () => {
    type Branches = { oneOf: { required: string[]; properties: { type: { const: string } } }[] };
    const schema = definitionJsonSchema() as { $schema: string; required: string[]; properties: { steps: { items: Branches | { $ref: string } } }; $defs?: Record<string, Branches> };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.required).toEqual(['id', 'steps']);
    // A step holds blocks of steps (containers), so the step schema is a definition of its own, referenced.
    const items = schema.properties.steps.items;
    const branches = ('$ref' in items ? schema.$defs![items.$ref.replace('#/$defs/', '')] : items).oneOf;
    expect(branches.map((b) => b.properties.type.const).sort()).toEqual([...STEP_TYPES].sort());
    expect(branches.find((b) => b.properties.type.const === 'transform')!.required).not.toContain('onError'); // it has a default
  });

  it('every command has a summary and at least one example that starts with smartspec', () => {
    for (const c of COMMANDS) {
      expect(c.summary.length, c.name).toBeGreaterThan(10);
      expect(c.examples.length, c.name).toBeGreaterThan(0);
      for (const e of c.examples) expect(e, c.name).toMatch(new RegExp(`(^|\\| )(\\w+=\\S+ )*smartspec ${c.name}\\b|source <\\(smartspec ${c.name}`));
    }
  });
});
