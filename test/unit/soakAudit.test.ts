/**
 * The soak's audit (soak/audit.ts): telling an allowed re-run of an attempt
 * cut off by a crash from a side effect that ran twice for one recorded
 * attempt. The soak's must-be-0 row rests on this distinction.
 */
import { describe, expect, it } from 'vitest';
import { auditEffects, interruptedAttempts, type HistoryEvent } from '../../soak/audit.js';

let seq = 0;
const ev = (type: string, stepId?: string, attempt?: number): HistoryEvent => ({ seq: ++seq, type, stepId, attempt });
const hits = (o: Record<string, number>) => new Map(Object.entries(o));

describe('soak audit', () => {
  it('a step run once and completed once: nothing to report', () => {
    const h = [ev('ExecutionStarted'), ev('StepStarted', 'a', 1), ev('StepCompleted', 'a', 1), ev('ExecutionCompleted')];
    expect(auditEffects(h, hits({ a: 1 }), ['a'])).toEqual([{ stepId: 'a', started: 1, completed: 1, failed: 0, interrupted: 0, hits: 1, duplicated: 0 }]);
  });

  it('an attempt cut off by a recovery and run again is an in-flight re-run, not a duplicate', () => {
    const h = [ev('ExecutionStarted'), ev('StepStarted', 'b', 1), ev('ExecutionResumed'), ev('StepStarted', 'b', 2), ev('StepCompleted', 'b', 2)];
    const [b] = auditEffects(h, hits({ b: 2 }), ['b']);
    expect(b).toMatchObject({ interrupted: 1, duplicated: 0 });
  });

  it('a StepStarted followed by another StepStarted of the same step counts as interrupted', () => {
    const h = [ev('StepStarted', 'b', 1), ev('StepStarted', 'b', 2), ev('StepCompleted', 'b', 2)];
    expect(interruptedAttempts(h).get('b')).toBe(1);
  });

  it('a failed attempt and its retry are two recorded attempts: two requests are fine', () => {
    const h = [ev('StepStarted', 'f', 1), ev('StepFailed', 'f', 1), ev('StepStarted', 'f', 2), ev('StepCompleted', 'f', 2)];
    expect(auditEffects(h, hits({ f: 2 }), ['f'])[0]).toMatchObject({ failed: 1, interrupted: 0, duplicated: 0 });
  });

  it('two requests for one recorded attempt is a duplicated side effect', () => {
    const h = [ev('StepStarted', 'a', 1), ev('StepCompleted', 'a', 1)];
    expect(auditEffects(h, hits({ a: 2 }), ['a'])[0].duplicated).toBe(1);
  });

  it('a step completed twice in one history is a duplicate even with matching requests', () => {
    const h = [ev('StepStarted', 'a', 1), ev('StepCompleted', 'a', 1), ev('StepStarted', 'a', 2), ev('StepCompleted', 'a', 2)];
    expect(auditEffects(h, hits({ a: 2 }), ['a'])[0].duplicated).toBe(1);
  });

  it('parallel branches in flight together are not interruptions of each other; a recovery cuts off all of them', () => {
    const h = [ev('StepStarted', 'x', 1), ev('StepStarted', 'y', 1), ev('StepCompleted', 'x', 1), ev('ExecutionResumed'), ev('StepStarted', 'y', 2), ev('StepCompleted', 'y', 2)];
    expect(Object.fromEntries(interruptedAttempts(h))).toEqual({ y: 1 });
  });

  it('a signal step waiting across a recovery is not a re-run', () => {
    const h = [ev('StepStarted', 'approve', 1), ev('ExecutionResumed'), ev('StepStarted', 'approve', 2)];
    expect(interruptedAttempts(h, new Set(['approve'])).size).toBe(0);
    expect(interruptedAttempts(h).get('approve')).toBe(1);
  });
});
