/**
 * `status`, `events`, `timeline`, `checkpoints`, `replay`: reading an
 * execution's log. These load no engine, no edge and no LLM layer.
 */
import type { StoredRecord } from '../../log/records.js';
import { listCheckpoints, loadExecution, summarize } from '../../log/views.js';
import { replayWithPayloads } from '../../payloads/verify.js';
import { replayWithChildren } from '../../log/childReplay.js';
import type { PayloadStore } from '../../payloads/store.js';
import { ExecutionNotFoundError } from '../../errors.js';
import type { CommandRun } from '../commandTable.js';
import { withLog } from '../connect.js';
import { closingLine, EventLines, formatDuration, stateText } from '../format.js';
import { out } from '../io.js';
import { need, positiveInt } from '../args.js';
import { attemptsOf, ganttLines } from '../timeline.js';

export const status: CommandRun = async ({ args, opts }) => {
  need(args, 1, 'status', '<id> [--json]');
  return withLog(async ({ log, payloads }) => {
    const loaded = await loadExecution(log, args[0]);
    const s = (await payloads.resolveDeep(summarize(loaded))) as ReturnType<typeof summarize>; // values kept by reference, read back
    if (opts.json) {
      out(JSON.stringify(s, null, 2));
      return 0;
    }
    const spans = stepDurations(loaded.records);
    const idWidth = Math.max(12, ...Object.keys(s.steps).map((id) => id.length));
    out(`${s.executionId}  ${s.workflowId}  ${s.status}  ${stateText(s.state)}`);
    for (const [id, st] of Object.entries(s.steps)) {
      const ms = spans.get(id);
      const tries = st.attempts && st.attempts > 1 ? ` ×${st.attempts}` : '';
      out(`  ${id.padEnd(idWidth)} ${st.phase.padEnd(8)} ${(ms === undefined ? '' : formatDuration(ms) + tries).padStart(10)}  ${st.output !== undefined ? JSON.stringify(st.output).slice(0, 100) : ''}${st.error ? ` ✗ ${(st.error as { message: string }).message}` : ''}`);
    }
    if (s.error) out(`error: ${(s.error as { message: string }).message}`);
    const phases = Object.values(s.steps).map((st) => st.phase);
    out(closingLine({ status: s.status, ms: Date.parse(s.updatedAt) - Date.parse(s.startedAt), stepsDone: phases.filter((p) => p === 'done').length, stepsTotal: phases.length, tokens: s.usage.totalTokens }));
    return 0;
  });
};

/**
 * Each step's time in its latest run: from its first attempt's start to its last attempt's end
 * (retries and backoff included; a resume that runs it again starts over at attempt 1).
 */
function stepDurations(records: StoredRecord[]): Map<string, number> {
  const spans = new Map<string, number>();
  const first = new Map<string, number>();
  for (const a of attemptsOf(records, Date.now())) {
    if (!first.has(a.stepId) || a.attempt === 1) first.set(a.stepId, a.start);
    spans.set(a.stepId, a.end - first.get(a.stepId)!);
  }
  return spans;
}

export const events: CommandRun = async ({ args, opts }) => {
  need(args, 1, 'events', '<id> [--from N] [--json]');
  const from = opts.from === undefined ? 1 : positiveInt(opts.from as string, '--from');
  return withLog(async ({ log }) => {
    const records = await log.read(args[0]);
    if (records.length === 0) throw new ExecutionNotFoundError(args[0]);
    if (opts.json) {
      out(JSON.stringify(records.map((r, i) => ({ n: i + 1, seq: r.seq, ...r.record })).slice(from - 1), null, 2));
      return 0;
    }
    const lines = new EventLines();
    records.forEach((r, i) => {
      const line = lines.line(r.record, true);
      if (i + 1 >= from) out(line);
    });
    return 0;
  });
};

export const timeline: CommandRun = async ({ args }) => {
  need(args, 1, 'timeline', '<id>');
  return withLog(async ({ log }) => {
    const loaded = await loadExecution(log, args[0]);
    const s = summarize(loaded);
    const phases = Object.values(s.steps).map((st) => st.phase);
    out(`${s.executionId}  ${s.workflowId}  ${closingLine({ status: s.status, ms: Date.parse(s.updatedAt) - Date.parse(s.startedAt), stepsDone: phases.filter((p) => p === 'done').length, stepsTotal: phases.length, tokens: s.usage.totalTokens })}`);
    for (const line of ganttLines(loaded.records, { now: Date.now(), columns: process.stdout.columns || 100 })) out(line);
    return 0;
  });
};

export const checkpoints: CommandRun = async ({ args, opts }) => {
  need(args, 1, 'checkpoints', '<id> [--json]');
  return withLog(async ({ log }) => {
    const loaded = await loadExecution(log, args[0]);
    const cps = listCheckpoints(loaded.records);
    if (opts.json) out(JSON.stringify(cps, null, 2));
    else {
      const number = new Map(loaded.records.map((r, i) => [r.seq, i + 1]));
      for (const c of cps) out(`${c.id.padEnd(10)} #${String(number.get(c.seq) ?? '?').padEnd(4)} ${c.at}  ${c.type.padEnd(16)} ${c.stepId ?? (c.type === 'ExecutionStarted' ? '(start)' : c.type === 'ExecutionResumed' ? '(resumed)' : '')}`);
    }
    return 0;
  });
};

/** Verify the hash chain and re-derive every state; exit 0 only when the whole history verifies. */
export const replay: CommandRun = async ({ args, opts }) => {
  need(args, 1, 'replay', '<id> [--json]');
  return withLog(async ({ log, payloads }) => replayReport(await log.read(args[0]), args[0], opts.json === true, payloads, (id) => log.read(id)));
};

async function replayReport(records: StoredRecord[], executionId: string, json: boolean, payloads: PayloadStore, read: (id: string) => Promise<StoredRecord[]>): Promise<number> {
  if (records.length === 0) throw new ExecutionNotFoundError(executionId);
  const own = await replayWithPayloads(executionId, records, payloads);
  // Its child executions (map items, workflow steps): each replays, and matches what this log recorded of it.
  const family = await replayWithChildren(executionId, (id) => (id === executionId ? Promise.resolve(records) : read(id)));
  const report = { ...own, ok: own.ok && family.ok, children: family.children };
  if (json) {
    out(JSON.stringify(report, null, 2));
    return report.ok ? 0 : 1;
  }
  const number = new Map(records.map((r, i) => [r.seq, i + 1]));
  const n = (seq: number) => `#${number.get(seq) ?? '?'}`;
  for (const e of report.events) out(`${n(e.seq).padEnd(5)} ${e.type.padEnd(18)} ${e.ok ? 'ok  ' : 'FAIL'} ${e.ok ? stateText(e.recomputed) : e.error}`);
  for (const p of report.payloads) if (!p.ok) out(`${n(p.seq).padEnd(5)} stored value FAIL ${p.error}`);
  for (const b of report.chainBreaks) out(`hash chain broken at ${n(b.seq)} (stream sequence ${b.seq}): recorded ${b.found.slice(0, 12)}…, computed ${b.expected.slice(0, 12)}…`);
  for (const c of family.children) if (!c.ok) out(`child ${c.childId} (${c.index !== undefined ? `item ${c.index} of ` : ''}step ${c.stepId} of ${c.parentId}) FAIL ${c.error}`);
  for (const e of family.executions.slice(1)) if (!e.ok) out(`child ${e.executionId} FAIL: its log does not verify (smartspec replay ${e.executionId})`);
  if (family.children.length > 0) out(`children: ${family.children.filter((c) => c.ok).length} of ${family.children.length} verified`);
  if (report.principals === 'absent') out('note: this log names no principals (it was written before they were recorded)');
  out(report.ok ? `replay verified ${report.events.length} events` : 'replay FAILED: the log does not verify');
  return report.ok ? 0 : 1;
}
