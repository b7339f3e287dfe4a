/**
 * What the soak concludes from one execution's history and the side effects
 * its http steps caused. Pure: the history comes from the edge, the counts
 * from the side-effect server.
 *
 * An attempt is *interrupted* when its StepStarted has no StepCompleted or
 * StepFailed before the next StepStarted of that step or an ExecutionResumed:
 * the process running it died (or lost the log) and the step ran again as a
 * new attempt. Such a re-run may repeat the side effect; it is allowed and
 * counted apart. A side effect is *duplicated* when a step caused more
 * requests than the attempts its history records, or completed twice.
 */

export interface HistoryEvent {
  seq: number;
  type: string;
  stepId?: string;
  attempt?: number;
}

export interface StepEffects {
  stepId: string;
  /** StepStarted records. */
  started: number;
  completed: number;
  failed: number;
  /** Attempts cut off by a crash and started again. */
  interrupted: number;
  /** Requests the side-effect server counted. */
  hits: number;
  /** Side effects beyond the recorded attempts, plus completions beyond the first. */
  duplicated: number;
}

/** Attempts interrupted by a crash, by step (signal steps excluded: waiting is not a side effect). */
export function interruptedAttempts(events: HistoryEvent[], signalSteps: ReadonlySet<string> = new Set()): Map<string, number> {
  const open = new Set<string>();
  const interrupted = new Map<string, number>();
  const cut = (stepId: string) => {
    if (!signalSteps.has(stepId)) interrupted.set(stepId, (interrupted.get(stepId) ?? 0) + 1);
  };
  for (const e of events) {
    if (e.type === 'ExecutionResumed') {
      for (const s of open) cut(s);
      open.clear();
    } else if (e.stepId !== undefined) {
      if (e.type === 'StepStarted') {
        if (open.has(e.stepId)) cut(e.stepId);
        open.add(e.stepId);
      } else if (e.type === 'StepCompleted' || e.type === 'StepFailed') {
        open.delete(e.stepId);
      }
    }
  }
  return interrupted;
}

/** Side effects of each step that has them (`effectSteps`), against its recorded attempts. */
export function auditEffects(events: HistoryEvent[], hits: ReadonlyMap<string, number>, effectSteps: readonly string[]): StepEffects[] {
  const interrupted = interruptedAttempts(events);
  return effectSteps.map((stepId) => {
    const of = (type: string) => events.filter((e) => e.type === type && e.stepId === stepId).length;
    const started = of('StepStarted');
    const completed = of('StepCompleted');
    const n = hits.get(stepId) ?? 0;
    return {
      stepId,
      started,
      completed,
      failed: of('StepFailed'),
      interrupted: interrupted.get(stepId) ?? 0,
      hits: n,
      duplicated: Math.max(0, n - started) + Math.max(0, completed - 1),
    };
  });
}
