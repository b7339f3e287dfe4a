/**
 * Concurrency and rate keys, pure parts: the slot and rate rules
 * (src/concurrency/slots.ts), the queued phase of the machine
 * (machines/queue.ts) driven through `applyEvent`, and the validation of
 * `concurrency` and `rateLimit` with paths.
 */
import { describe, expect, it } from 'vitest';
import { applyEvent, initialSnapshot, queuedStep, statusOf, stepPhases, type WorkflowEvent, type WorkflowSnapshot } from '../../machines/index.js';
import { acquire, admissible, emptyKey, emptyRate, release, reserve, spend, type KeyState } from '../../src/concurrency/slots.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { DefinitionError } from '../../src/errors.js';

const holder = (n: number) => ({ id: `e${n}:s:1`, executionId: `e${n}`, stepId: 's', attempt: 1 });

describe('slots of a concurrency key', () => {
  it('grants up to the limit, queues the rest in order, and admits waiters first-come first-served', () => {
    let s: KeyState = emptyKey('k', 2);
    const take = (n: number, now = 0) => { const r = acquire(s, holder(n), 2, now, 1000); s = r.state; return r.granted; };
    expect([take(1), take(2), take(3), take(4)]).toEqual([true, true, false, false]);
    expect(s.queue.map((w) => w.id)).toEqual(['e3:s:1', 'e4:s:1']);
    s = release(s, 'e1:s:1');
    expect(admissible(s, 0).map((w) => w.id)).toEqual(['e3:s:1']);
    // A newcomer does not jump the queue: the free slot is e3's.
    expect(take(5)).toBe(false);
    expect(take(4)).toBe(false);
    expect(take(3)).toBe(true);
    expect(s.queue.map((w) => w.id)).toEqual(['e4:s:1', 'e5:s:1']);
  });

  it('an expired lease frees its slot; a holder that takes again renews; force takes one past the limit', () => {
    let s = acquire(emptyKey('k', 1), holder(1), 1, 0, 1000).state;
    expect(acquire(s, holder(2), 1, 999, 1000).granted).toBe(false);
    const later = acquire(s, holder(2), 1, 1000, 1000);
    expect(later.granted).toBe(true);
    expect(later.state.leases.map((l) => l.id)).toEqual(['e2:s:1']);
    s = acquire(s, holder(1), 1, 500, 1000).state;
    expect(s.leases[0].expiresAt).toBe(1500);
    const forced = acquire(s, holder(3), 1, 600, 1000, true);
    expect(forced.granted).toBe(true);
    expect(forced.state.leases).toHaveLength(2);
  });
});

describe('rate keys', () => {
  it('perMinute spreads starts evenly, in the order they ask', () => {
    let s = emptyRate('r');
    const at: number[] = [];
    for (let i = 0; i < 5; i++) { const r = reserve(s, 600, 1000); s = r.state; at.push(r.at); }
    expect(at).toEqual([1000, 1100, 1200, 1300, 1400]);
    // After a quiet spell a start is at once again.
    expect(reserve(s, 600, 5000).at).toBe(5000);
  });

  it('tokens used hold the next start back by tokens × 60000 / tokensPerMinute', () => {
    const s = spend(emptyRate('r'), 300, 6000, 1000);
    expect(reserve(s, undefined, 1000).at).toBe(4000);
    expect(reserve(spend(s, 100, 6000, 2000), undefined, 2000).at).toBe(5000);
  });
});

describe('the queued phase of the machine', () => {
  const definition = validateDefinition({
    id: 'q',
    concurrency: [{ key: 'runs-{{input.tenant}}', limit: 1 }],
    steps: [
      { id: 'a', type: 'transform', value: 1, concurrency: [{ key: '{{input.tenant}}', limit: 2 }], rateLimit: { key: 'r', perMinute: 60 } },
      { id: 'b', type: 'transform', value: 2 },
    ],
  });
  const drive = (events: WorkflowEvent[]): WorkflowSnapshot => {
    let snap = initialSnapshot('x', definition);
    const checkpoints = new Map<number, WorkflowSnapshot>();
    events.forEach((e, i) => {
      const next = applyEvent(snap, e, checkpoints, i);
      expect(next, `${e.type} applies`).not.toBe(snap);
      snap = next;
    });
    return snap;
  };
  const started: WorkflowEvent = { type: 'ExecutionStarted', definition, input: { tenant: 't' } };

  it('an execution over its workflow-level key is queued (WAITING), then admitted into its first step', () => {
    const queued = drive([started, { type: 'ExecutionQueued', keys: ['runs-t'], since: '2026-01-01T00:00:00.000Z', reason: 'concurrency' }]);
    expect(queued.value).toBe('queued');
    expect(statusOf(queued)).toBe('WAITING');
    const admitted = drive([started, { type: 'ExecutionQueued', keys: ['runs-t'], since: '2026-01-01T00:00:00.000Z', reason: 'concurrency' }, { type: 'ExecutionAdmitted', keys: ['runs-t'], queuedMs: 5 }]);
    expect(admitted.value).toEqual({ running: { a: 'pending' } });
    expect(admitted.context.admitted).toBe(true);
  });

  it('a step over its keys is queued (WAITING, its keys kept), queued again for a slot after its rate time, then started', () => {
    const base: WorkflowEvent[] = [started, { type: 'ExecutionAdmitted', keys: ['runs-t'] }];
    const rate: WorkflowEvent = { type: 'StepQueued', stepId: 'a', attempt: 1, keys: ['t', 'r'], since: '2026-01-01T00:00:00.000Z', reason: 'rate', until: '2026-01-01T00:00:01.000Z' };
    const q = drive([...base, rate]);
    expect(stepPhases(q).a).toBe('queued');
    expect(statusOf(q)).toBe('WAITING');
    expect(queuedStep(q.context, 'a')).toMatchObject({ keys: ['t', 'r'], reason: 'rate', until: '2026-01-01T00:00:01.000Z' });
    const slot: WorkflowEvent = { ...rate, reason: 'concurrency' } as WorkflowEvent;
    const run = drive([...base, rate, slot, { type: 'StepStarted', stepId: 'a', attempt: 1, keys: ['t', 'r'], queuedMs: 1500 }]);
    expect(stepPhases(run).a).toBe('running');
    expect(queuedStep(run.context, 'a')).toBeUndefined();
  });

  it('an execution queued on its rate time may be queued again for a slot, keeping its reserved time', () => {
    const rate: WorkflowEvent = { type: 'ExecutionQueued', keys: ['runs-t'], since: '2026-01-01T00:00:00.000Z', reason: 'rate', until: '2026-01-01T00:00:02.000Z' };
    const snap = drive([started, rate, { ...rate, reason: 'concurrency' } as WorkflowEvent]);
    expect(snap.value).toBe('queued');
    expect(snap.context.executionQueued).toMatchObject({ reason: 'concurrency', until: '2026-01-01T00:00:02.000Z' });
  });

  it('no ExecutionQueued once a step has started', () => {
    const snap = drive([started, { type: 'ExecutionAdmitted', keys: ['runs-t'] }, { type: 'StepStarted', stepId: 'a', attempt: 1 }]);
    expect(applyEvent(snap, { type: 'ExecutionQueued', keys: ['runs-t'], since: '2026-01-01T00:00:00.000Z', reason: 'concurrency' }, new Map(), 3)).toBe(snap);
  });
});

describe('validation of concurrency and rateLimit', () => {
  const issuesOf = (doc: unknown) => {
    try { validateDefinition(doc); } catch (err) { expect(err).toBeInstanceOf(DefinitionError); return (err as DefinitionError).issues; }
    throw new Error('accepted');
  };
  it('names the path of a bad limit, a rate without a rate, a container with keys, and a workflow key that reads steps', () => {
    const issues = issuesOf({
      id: 'bad',
      concurrency: [{ key: '{{steps.a.output}}', limit: 1 }],
      steps: [
        { id: 'a', type: 'transform', value: 1, concurrency: [{ key: 'k', limit: 0 }] },
        { id: 'b', type: 'transform', value: 1, rateLimit: { key: 'r' } },
      ],
    });
    expect(issues).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: 'steps[0].concurrency[0].limit' }),
      expect.objectContaining({ path: 'steps[1].rateLimit', message: 'a rateLimit needs perMinute, tokensPerMinute or both' }),
    ]));
    expect(issuesOf({ id: 'c', steps: [{ id: 'p', type: 'parallel', concurrency: [{ key: 'k', limit: 1 }], branches: { x: [{ id: 'x1', type: 'transform', value: 1 }] } }] }))
      .toEqual([expect.objectContaining({ path: 'steps[0].concurrency', message: expect.stringContaining('not to a parallel step') })]);
    expect(issuesOf({ id: 'w', concurrency: [{ key: '{{steps.a.output}}', limit: 1 }], steps: [{ id: 'a', type: 'transform', value: 1 }] }))
      .toEqual(expect.arrayContaining([expect.objectContaining({ path: 'concurrency[0].key', message: expect.stringContaining("not 'steps.a'") })]));
    expect(issuesOf({ id: 'wr', rateLimit: { key: '{{steps.a.output}}', perMinute: 5 }, steps: [{ id: 'a', type: 'transform', value: 1 }] }))
      .toEqual(expect.arrayContaining([expect.objectContaining({ path: 'rateLimit.key', message: expect.stringContaining("not 'steps.a'") })]));
    expect(issuesOf({ id: 'r', steps: [{ id: 'a', type: 'transform', value: 1, concurrency: [{ key: '{{steps.later.output}}', limit: 1 }] }, { id: 'later', type: 'transform', value: 2 }] }))
      .toEqual([expect.objectContaining({ path: expect.stringMatching(/^steps\[0\]\.concurrency\[0\]\.key/) })]);
  });
});
