/**
 * One execution: the timeline, the statechart, actions, each step, and the
 * event log with its hash chain checked. Live: the log's SSE stream is
 * followed while the execution runs (and for a while after an action, which
 * may start it again), and the summary is read again as records arrive.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, enc } from '../api.js';
import { Actions } from '../components/Actions.js';
import { EventLog } from '../components/EventLog.js';
import { ProblemView } from '../components/Problem.js';
import { StatechartView } from '../components/Statechart.js';
import { Steps } from '../components/Steps.js';
import { TimelineView } from '../components/Timeline.js';
import { Json } from '../components/Json.js';
import { duration, time } from '../format.js';
import { followEvents } from '../live.js';
import { verifyChain, type ChainResult } from '../model/chain.js';
import { currentDefinition, isTerminal, type EventRecord, type ExecutionSummary } from '../model/records.js';
import { activeIds, chartOf } from '../model/statechart.js';
import { buildTimeline } from '../model/timeline.js';
import { href } from '../router.js';

/** After an action, watch this long even if the execution still looks ended (the worker has yet to act). */
const AFTER_ACTION_MS = 30_000;
const AFTER_ACTION_POLL_MS = 1000;
const SUMMARY_EVERY_MS = 2000;
const RETRY_MS = 3000;
const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

export function ExecutionPage({ id }: { id: string }) {
  const [summary, setSummary] = useState<ExecutionSummary | null>(null);
  const [records, setRecords] = useState<EventRecord[]>([]);
  const [chain, setChain] = useState<ChainResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [selected, setSelected] = useState<string | undefined>();
  const [live, setLive] = useState(false);
  const [now, setNow] = useState(Date.now());
  const wake = useRef<() => void>(() => undefined);

  useEffect(() => {
    const abort = new AbortController();
    const { signal } = abort;
    let recs: EventRecord[] = [];
    let actedAt = 0;
    let woken: () => void = () => undefined;
    wake.current = () => {
      actedAt = Date.now();
      woken();
    };
    // Reads may answer out of order (a slow one after a newer one): only a newer read replaces the summary.
    let issued = 0;
    let applied = 0;
    const readSummary = async () => {
      const n = ++issued;
      const s = await api<ExecutionSummary>('GET', `/executions/${enc(id)}`, undefined, signal);
      if (!signal.aborted && n > applied) {
        applied = n;
        setSummary(s);
      }
      return s;
    };
    // Records can come fast: the summary is read again at most every SUMMARY_EVERY_MS (the rate limit counts each read).
    let summaryDue: ReturnType<typeof setTimeout> | undefined;
    let lastRead = 0;
    const onRecord = (r: EventRecord) => {
      if (recs.length && r.seq <= recs[recs.length - 1].seq) return;
      recs = [...recs, r];
      setRecords(recs);
      summaryDue ??= setTimeout(() => {
        summaryDue = undefined;
        lastRead = Date.now();
        readSummary().catch(() => undefined);
      }, Math.max(150, lastRead + SUMMARY_EVERY_MS - Date.now()));
    };
    (async () => {
      let s: ExecutionSummary | undefined;
      while (!signal.aborted) {
        try {
          if (!s) {
            // The log first: a summary read after it is at least as new, and what the log gains later
            // arrives on the stream (which reads the summary again). The other order could miss records.
            recs = (await api<{ events: EventRecord[] }>('GET', `/executions/${enc(id)}/events`, undefined, signal)).events;
            setRecords(recs);
            s = await readSummary();
          }
          const from = recs.length ? recs[recs.length - 1].seq + 1 : 0;
          if (!isTerminal(s.status)) {
            setLive(true);
            await followEvents(id, from, onRecord, signal);
            s = await readSummary();
            setError(null);
            continue;
          }
          if (Date.now() - actedAt < AFTER_ACTION_MS) {
            // After an action on an ended execution the worker has yet to act: ask now and then (each
            // read counts against the rate limit), and read the new records once the log has moved on.
            setLive(true);
            await sleep(AFTER_ACTION_POLL_MS, signal);
            s = await readSummary();
            if (s.lastSeq !== undefined && s.lastSeq >= from) await followEvents(id, from, onRecord, signal);
            setError(null);
            continue;
          }
          setLive(false);
          await new Promise<void>((resolve) => {
            woken = resolve;
            signal.addEventListener('abort', () => resolve(), { once: true });
          });
        } catch (err) {
          if (signal.aborted) return;
          setError(err);
          setLive(false);
          // Not found, no key, not allowed: trying again will not help. A 429, a 5xx or a lost connection may pass.
          const status = err instanceof ApiError ? err.status : 0;
          if (status >= 400 && status < 500 && status !== 429) return;
          await sleep(RETRY_MS, signal);
        }
      }
    })();
    return () => {
      abort.abort();
      clearTimeout(summaryDue);
    };
  }, [id]);

  useEffect(() => {
    if (!live) return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [live]);

  useEffect(() => {
    let current = true;
    const t = setTimeout(() => verifyChain(records).then((c) => current && setChain(c)), 200);
    return () => {
      current = false;
      clearTimeout(t);
    };
  }, [records]);

  const definition = useMemo(() => currentDefinition(records), [records]);
  const chart = useMemo(() => (definition ? chartOf(definition) : undefined), [definition]);
  const timeline = useMemo(() => buildTimeline(records, now), [records, now]);
  const active = useMemo(() => activeIds(records.length ? records[records.length - 1].state : undefined), [records]);
  const failed = new Set(Object.entries(summary?.steps ?? {}).flatMap(([stepId, s]) => (s.phase === 'failed' ? [stepId] : [])));

  if (error && !summary) {
    return (
      <section>
        <h1>Execution {id}</h1>
        <ProblemView error={error} />
      </section>
    );
  }
  if (!summary) return <p aria-live="polite">Loading execution {id}…</p>;
  const ranFor = summary.startedAt ? (summary.endedAt ? Date.parse(summary.endedAt) : now) - Date.parse(summary.startedAt) : undefined;
  return (
    <article aria-labelledby="execution-title">
      <header class="execution-head">
        <h1 id="execution-title">
          Execution <code>{id}</code>
        </h1>
        <p>
          <span class={`status status-${summary.status}`} data-status={summary.status}>
            {summary.status}
          </span>{' '}
          workflow <a href={href('workflows', summary.workflowId)}>{summary.workflowId}</a>
          {ranFor !== undefined ? ` · ${summary.endedAt ? 'ran' : 'running for'} ${duration(ranFor)}` : ''}
          {summary.events ? ` · ${summary.events} events` : ''}
          {summary.usage?.totalTokens ? ` · ${summary.usage.totalTokens.toLocaleString('en')} tokens` : ''}
          {summary.budget ? ` of ${summary.budget.maxTokens.toLocaleString('en')}` : ''} · started {time(summary.startedAt ?? summary.createdAt)}{' '}
          <span class="live-on">{live && !isTerminal(summary.status) ? '● live' : ''}</span>
        </p>
        {summary.error ? (
          <p class="problem">
            <strong>{summary.error.code}</strong> {summary.error.message}
          </p>
        ) : null}
        <ProblemView error={error} />
      </header>

      <section aria-labelledby="timeline-title">
        <h2 id="timeline-title">Timeline</h2>
        {records.length ? <TimelineView timeline={timeline} selected={selected} onSelect={setSelected} /> : <p class="muted">No steps yet.</p>}
      </section>

      <div class="two-col">
        <section aria-labelledby="graph-title">
          <h2 id="graph-title">Statechart</h2>
          {chart ? <StatechartView root={chart} active={active} failed={failed} selected={selected} onSelect={setSelected} /> : <p class="muted">Not started yet.</p>}
        </section>
        <section aria-labelledby="actions-title">
          <h2 id="actions-title">Actions</h2>
          <Actions summary={summary} definition={definition} selected={selected} onSelect={(s) => setSelected(s || undefined)} onAction={() => wake.current()} />
        </section>
      </div>

      <section aria-labelledby="steps-title">
        <h2 id="steps-title">Steps</h2>
        <Steps definition={definition} summary={summary} records={records} selected={selected} />
        {summary.output !== undefined ? (
          <>
            <h3>Output</h3>
            <Json value={summary.output} />
          </>
        ) : null}
      </section>

      <section aria-labelledby="log-title">
        <h2 id="log-title">Event log</h2>
        <EventLog records={records} chain={chain} />
      </section>
    </article>
  );
}
