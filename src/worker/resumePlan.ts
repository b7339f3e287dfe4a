/**
 * Planning a resume from an execution's log, without writing anything: where
 * to rebuild the actor, the snapshot it starts from, and the ExecutionResumed
 * record that says so. The edge calls it to refuse a bad resume before it
 * publishes a command; the engine calls it to carry one out.
 */
import { activeStage, isCheckpointEvent, isTerminal, resumeSnapshot, statusOf, stepPhases, type ExecutionResumed, type WorkflowSnapshot } from '../../machines/index.js';
import type { Budget, Definition } from '../../machines/definition.js';
import type { ItemsAgain } from '../../machines/events.js';
import { stepIndex } from '../../machines/blocks.js';
import { validateDefinition } from '../definition/validate.js';
import { InvalidExecutionStateError, InvalidInputError, NoStepsError } from '../errors.js';
import { findCheckpoint, type LoadedExecution } from '../log/views.js';
import { limits } from '../limits.js';
import { assertRoomToResume } from './historyLimit.js';

export interface ResumeRequest {
  checkpointId?: string;
  fromStep?: string;
  /** Replacement steps: a definition document whose steps replace the recorded ones. */
  steps?: unknown;
  budget?: Budget;
  /** A parent resumes its child (a map item's, a `workflow` step's) from a step: a COMPLETED child runs it again too. */
  ofChild?: boolean;
}

export interface ResumePlan {
  event: ExecutionResumed;
  next: WorkflowSnapshot;
}

/** `items`: from a step inside a map's block, the items whose children are resumed from it (src/worker/resumeItems.ts). */
export function planResume(loaded: LoadedExecution, req: ResumeRequest, historyLimit = limits().historyLimit, items?: ItemsAgain): ResumePlan {
  const { executionId, fold, records } = loaded;
  if (req.checkpointId && req.fromStep) throw new InvalidInputError('give either a checkpoint or a step to resume from, not both');
  const current = fold.snapshot;
  const status = statusOf(current);
  // Only a child (a map item's or a `workflow` step's) is resumed after COMPLETED, and only by its parent's resume.
  if (status === 'COMPLETED' && !(req.ofChild && req.fromStep && current.context.parent)) {
    throw new InvalidExecutionStateError(`execution '${executionId}' is COMPLETED: there is nothing to resume (start a new execution to run it again)`, { status });
  }
  assertRoomToResume(executionId, loaded.recordCount, historyLimit);
  const definition = req.steps === undefined ? current.context.definition : replacementDefinition(current.context.definition, req.steps);
  const interrupted = !isTerminal(status) && status !== 'PENDING';
  const again = items && req.fromStep === items.fromStep && req.steps === undefined ? items : undefined;
  // A step of a `workflow` step's child: the parent runs again from that step, which resumes the child from it.
  const fromStep = again?.child ? again.stepId : req.fromStep;

  // Where to rebuild the actor: a named checkpoint; where the step's stage began; the last
  // transition of an interrupted execution; or the last checkpoint of a failed/cancelled one.
  let at: { seq: number; snapshot: WorkflowSnapshot };
  if (req.checkpointId) {
    const seq = findCheckpoint(executionId, records, req.checkpointId).seq;
    at = { seq, snapshot: fold.checkpoints.get(seq)! };
  } else if (fromStep) {
    at = containerUnderWay(loaded, fromStep) ?? stageEntry(loaded, fromStep) ?? { seq: fold.lastSeq, snapshot: current };
  } else if (interrupted) {
    at = { seq: fold.lastSeq, snapshot: current };
  } else {
    const seq = lastCheckpointSeq(loaded);
    at = { seq, snapshot: fold.checkpoints.get(seq)! };
  }
  const reason = req.checkpointId || req.fromStep || !interrupted ? 'resume' : 'recovery';
  const next = resumeSnapshot(at.snapshot, { definition, fromStep, budget: req.budget, recovery: reason === 'recovery', items: again });
  const event: ExecutionResumed = {
    type: 'ExecutionResumed',
    checkpointSeq: at.seq,
    reason,
    ...(fromStep ? { fromStep } : {}),
    ...(req.steps !== undefined ? { definition } : {}),
    ...(req.budget ? { budget: req.budget } : {}),
    ...(again ? { items: again } : {}),
  };
  return { event, next };
}

/** Replacement steps: a definition document whose steps replace the recorded ones. */
function replacementDefinition(recorded: Definition, doc: unknown): Definition {
  const steps = (doc as { steps?: unknown })?.steps;
  if (!Array.isArray(steps) || steps.length === 0) throw new NoStepsError('the replacement definition has no steps');
  const d = doc as Partial<Definition>;
  return validateDefinition({ ...recorded, steps, parallel: d.parallel ?? [], ...(d.budget ? { budget: d.budget } : {}) });
}

function lastCheckpointSeq({ records }: LoadedExecution): number {
  for (let i = records.length - 1; i >= 0; i--) if (isCheckpointEvent(records[i].record)) return records[i].seq;
  return records[0].seq;
}

/** The latest checkpoint at which the step's stage was about to begin (all its steps pending). */
function stageEntry({ records, fold }: LoadedExecution, innerId: string): { seq: number; snapshot: WorkflowSnapshot } | undefined {
  // A step inside a container: where its top-level container was about to begin.
  const found = stepIndex(fold.snapshot.context.definition).get(innerId);
  const stepId = found ? (found.ancestors[0] ?? found.step).id : innerId;
  for (let i = records.length - 1; i >= 0; i--) {
    const snapshot = fold.checkpoints.get(records[i].seq);
    if (!snapshot) continue;
    const stage = activeStage(snapshot);
    if (!stage?.steps.some((st) => st.id === stepId)) continue;
    const phases = stepPhases(snapshot);
    if (stage.steps.every((st) => phases[st.id] === 'pending')) return { seq: records[i].seq, snapshot };
  }
  return undefined;
}

/**
 * For a step inside a container: the latest checkpoint at which its top-level container was
 * under way, so only the step's part of it runs again (machines/resumeInside.ts).
 */
function containerUnderWay({ records, fold }: LoadedExecution, innerId: string): { seq: number; snapshot: WorkflowSnapshot } | undefined {
  const found = stepIndex(fold.snapshot.context.definition).get(innerId);
  if (!found || found.ancestors.length === 0) return undefined;
  const topId = found.ancestors[0].id;
  for (let i = records.length - 1; i >= 0; i--) {
    const snapshot = fold.checkpoints.get(records[i].seq);
    if (!snapshot) continue;
    const stage = activeStage(snapshot);
    if (!stage?.steps.some((st) => st.id === topId)) continue;
    if (stepPhases(snapshot)[topId] === 'active') return { seq: records[i].seq, snapshot };
  }
  return undefined;
}
