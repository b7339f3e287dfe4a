/**
 * The executions list: status and workflow filters (sent to GET /executions),
 * a search by id, refreshed every three seconds while the page is visible.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { ProblemView } from '../components/Problem.js';
import { ago, shortId, time } from '../format.js';
import { STATUSES, type IndexEntry } from '../model/records.js';
import { href, navigate } from '../router.js';
import { ListTable } from '../components/ListTable.js';

// The default rate limit is 60 requests a minute per client: a third of it for the list.
const REFRESH_MS = 3000;

export function ExecutionsPage({ params }: { params: URLSearchParams }) {
  const status = params.get('status') ?? '';
  const workflowId = params.get('workflow') ?? '';
  const [search, setSearch] = useState('');
  const [entries, setEntries] = useState<IndexEntry[] | null>(null);
  const [workflowIds, setWorkflowIds] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);

  const setFilter = (name: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    const q = next.toString();
    navigate(`#/executions${q ? `?${q}` : ''}`, true);
  };

  useEffect(() => {
    api<{ workflows: { id: string }[] }>('GET', '/workflows')
      .then((r) => setWorkflowIds([...new Set(r.workflows.map((w) => w.id))]))
      .catch(() => setWorkflowIds([]));
  }, []);

  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      const q = new URLSearchParams({ limit: '200' });
      if (status) q.set('status', status);
      if (workflowId) q.set('workflowId', workflowId);
      try {
        const r = await api<{ executions: IndexEntry[] }>('GET', `/executions?${q}`, undefined, abort.signal);
        setEntries(r.executions);
        setError(null);
      } catch (err) {
        if (abort.signal.aborted) return;
        setError(err);
      }
      if (!abort.signal.aborted) timer = setTimeout(() => (document.hidden ? (timer = setTimeout(load, REFRESH_MS)) : load()), REFRESH_MS);
    };
    void load();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [status, workflowId]);

  const needle = search.trim().toLowerCase();
  const shown = (entries ?? []).filter((e) => !needle || e.executionId.toLowerCase().includes(needle));
  const workflowOptions = [...new Set([...workflowIds, ...(entries ?? []).map((e) => e.workflowId), ...(workflowId ? [workflowId] : [])])].sort();

  return (
    <section aria-labelledby="executions-title">
      <h1 id="executions-title">Executions</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          if (needle && shown.length === 1) navigate(href('executions', shown[0].executionId));
          else if (needle && !shown.length) navigate(href('executions', search.trim()));
        }}
      >
        <label>
          Status
          <select value={status} onChange={(e) => setFilter('status', e.currentTarget.value)}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Workflow
          <select value={workflowId} onChange={(e) => setFilter('workflow', e.currentTarget.value)}>
            <option value="">any</option>
            {workflowOptions.map((w) => (
              <option key={w} value={w}>
                {w}
              </option>
            ))}
          </select>
        </label>
        <label>
          Execution id
          <input type="search" value={search} placeholder="search by id" onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
        <span class="muted live" aria-live="polite">
          {entries ? `${shown.length} shown · live` : 'loading…'}
        </span>
      </form>
      <ProblemView error={error} />
      <ListTable caption="Executions, newest first" columns={['Execution', 'Workflow', 'Status', 'Created', 'Updated']}>
        {shown.map((e) => (
          <tr key={e.executionId} data-execution={e.executionId}>
            <td>
              <a href={href('executions', e.executionId)} title={e.executionId}>
                {shortId(e.executionId)}
              </a>
            </td>
            <td>
              <a href={`#/executions?workflow=${enc(e.workflowId)}`}>{e.workflowId}</a>
            </td>
            <td>
              <span class={`status status-${e.status}`}>{e.status}</span>
            </td>
            <td>{time(e.createdAt)}</td>
            <td>{ago(e.updatedAt)}</td>
          </tr>
        ))}
        {entries && !shown.length ? (
          <tr>
            <td colSpan={5} class="muted">
              No executions{status || workflowId || needle ? ' match these filters' : ' yet'}.
            </td>
          </tr>
        ) : null}
      </ListTable>
    </section>
  );
}
