/**
 * The explorer's other pure models: the hash-chain check the page runs
 * (WebCrypto + canonicalize) against records sealed by the server's own code
 * (src/log/records.ts), and the statechart read from the compiled machine.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { sealRecord, type LogRecord } from '../../src/log/records.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { verifyChain } from '../../web/src/model/chain.js';
import type { EventRecord } from '../../web/src/model/records.js';
import { activeIds, chartOf, type ChartNode } from '../../web/src/model/statechart.js';

const forkJoin = async () => validateDefinition(JSON.parse(await readFile(new URL('../../examples/fork-join.json', import.meta.url), 'utf8')));

/** Records as the log stores them: each sealed over the previous hash, then read back as JSON. */
function sealed(bodies: Omit<LogRecord, 'hash' | 'executionId' | 'workflowId' | 'at' | 'state'>[]): EventRecord[] {
  let prev = '';
  return bodies.map((body, i) => {
    const { json, hash } = sealRecord(prev, { executionId: 'e1', workflowId: 'w', at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), state: { running: 'a' }, ...body } as Omit<LogRecord, 'hash'>);
    prev = hash;
    return { seq: 100 + i, ...JSON.parse(json) } as EventRecord;
  });
}

describe('the explorer hash-chain check', () => {
  it('agrees with the server: a sealed log verifies; an edited, removed or reordered record breaks it there', async () => {
    const records = sealed([
      { type: 'ExecutionStarted', definition: await forkJoin(), input: { feature: 'ünïcödé €' } },
      { type: 'StepStarted', stepId: 'draft', attempt: 1 },
      { type: 'StepCompleted', stepId: 'draft', attempt: 1, output: { text: 'x', n: 1.5e-7, big: 1e21 } },
      { type: 'StepStarted', stepId: 'security', attempt: 1 },
    ] as never);
    expect(await verifyChain(records)).toEqual({ status: 'verified', checked: 4, broken: [] });

    const edited = records.map((r) => (r.seq === 102 ? ({ ...r, output: { text: 'y', n: 1.5e-7, big: 1e21 } } as EventRecord) : r));
    expect(await verifyChain(edited)).toMatchObject({ status: 'broken', broken: [102] });
    expect((await verifyChain([records[0], records[2], records[3]])).broken).toEqual([102]);
    expect((await verifyChain([records[0], records[2], records[1], records[3]])).broken).toEqual([102, 101, 103]);
    expect(await verifyChain([])).toEqual({ status: 'empty', checked: 0, broken: [] });
  });
});

describe('the explorer statechart', () => {
  it('is the compiled machine: running holds the stages in order, the group is a parallel state with a region per step', async () => {
    const root = chartOf(await forkJoin());
    expect(root.children.map((c) => c.key)).toEqual(['pending', 'running', 'completed', 'failed', 'cancelled']);
    const running = root.children[1];
    expect(running.children.map((c) => [c.key, c.type, c.step?.id])).toEqual([
      ['draft', 'compound', 'draft'],
      ['group(security,perf,legal)', 'parallel', undefined],
      ['merge', 'compound', 'merge'],
      ['(end)', 'atomic', undefined],
    ]);
    const group = running.children[1];
    expect(group.children.map((c: ChartNode) => [c.id, c.step])).toEqual([
      ['running.group(security,perf,legal).security', { id: 'security', type: 'transform' }],
      ['running.group(security,perf,legal).perf', { id: 'perf', type: 'sleep' }],
      ['running.group(security,perf,legal).legal', { id: 'legal', type: 'transform' }],
    ]);
    // A sleep can wait; a transform cannot.
    expect(group.children[1].children.map((c) => c.key)).toContain('waiting');
    expect(group.children[0].children.map((c) => c.key)).not.toContain('waiting');
  });

  it('marks the states a recorded state value is in, ancestors included', () => {
    const active = activeIds({ running: { 'group(security,perf,legal)': { legal: 'pending', perf: 'waiting', security: 'done' } } });
    expect([...active].sort()).toEqual(
      [
        'running',
        'running.group(security,perf,legal)',
        'running.group(security,perf,legal).legal',
        'running.group(security,perf,legal).legal.pending',
        'running.group(security,perf,legal).perf',
        'running.group(security,perf,legal).perf.waiting',
        'running.group(security,perf,legal).security',
        'running.group(security,perf,legal).security.done',
      ].sort(),
    );
    expect([...activeIds('completed')]).toEqual(['completed']);
  });
});
