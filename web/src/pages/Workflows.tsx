/**
 * Workflows: the registered ones and their versions, one definition (its
 * statechart and JSON, and a form to start it), and an editor that checks a
 * new definition as you type and registers it.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Json } from '../components/Json.js';
import { ProblemView } from '../components/Problem.js';
import { StatechartView } from '../components/Statechart.js';
import { time } from '../format.js';
import { checkDefinitionText } from '../model/definitionCheck.js';
import type { Definition } from '../model/records.js';
import { chartOf } from '../model/statechart.js';
import { href, navigate } from '../router.js';
import { ListTable } from '../components/ListTable.js';

interface ListedWorkflow { id: string; version: number; createdAt: string; steps: number; disabled?: boolean }
interface StoredWorkflow { id: string; version: number; createdAt: string; definition: Definition; disabled?: boolean }

const TEMPLATE = `# JSON or YAML. Checked as you type, with the rules the edge applies.
id: hello
description: Greets, waits for an approval signal, then answers.
steps:
  - id: greet
    type: transform
    value: { text: "Hello {{input.name}}" }
  - id: approval
    type: signal
    name: approve
  - id: answer
    type: transform
    value: { greeting: "{{steps.greet.output.text}}", approvedBy: "{{steps.approval.output.by}}" }
`;

function useWorkflows(reload: number) {
  const [list, setList] = useState<ListedWorkflow[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<{ workflows: ListedWorkflow[] }>('GET', '/workflows')
      .then((r) => setList(r.workflows))
      .catch(setError);
  }, [reload]);
  return { list, error };
}

/** The registry lists the latest of each id and every version: one entry per id, its versions newest first. */
function byId(list: ListedWorkflow[]): Map<string, ListedWorkflow[]> {
  const out = new Map<string, ListedWorkflow[]>();
  for (const w of list) {
    const versions = out.get(w.id) ?? [];
    if (!versions.some((v) => v.version === w.version)) versions.push(w);
    out.set(w.id, versions);
  }
  for (const versions of out.values()) versions.sort((a, b) => b.version - a.version);
  return out;
}

function WorkflowList({ list }: { list: ListedWorkflow[] }) {
  const groups = [...byId(list)];
  if (!groups.length) return <p class="muted">No workflows registered yet.</p>;
  return (
    <ListTable caption="Registered workflows" columns={['Workflow', 'Latest', 'Steps', 'Registered', 'Versions']}>
      {groups.map(([id, versions]) => (
        <tr key={id} data-workflow={id}>
          <td>
            <a href={href('workflows', id)}>{id}</a>
            {versions[0].disabled && <span class="muted"> (disabled: its triggers and schedules start nothing)</span>}
          </td>
          <td>v{versions[0].version}</td>
          <td>{versions[0].steps}</td>
          <td>{time(versions[0].createdAt)}</td>
          <td>
            {versions.map((v) => (
              <a key={v.version} class="version" href={href('workflows', id, v.version)}>
                v{v.version}
              </a>
            ))}
          </td>
        </tr>
      ))}
    </ListTable>
  );
}

function StartForm({ workflow }: { workflow: StoredWorkflow }) {
  const [input, setInput] = useState('{}');
  const [error, setError] = useState<unknown>(null);
  return (
    <form
      class="action"
      aria-labelledby="start-title"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        try {
          let parsed: unknown;
          try {
            parsed = JSON.parse(input);
          } catch (err) {
            throw new Error(`the input is not JSON: ${(err as Error).message}`);
          }
          const r = await api<{ executionId: string }>('POST', '/executions', { workflowId: workflow.id, version: workflow.version, input: parsed });
          navigate(href('executions', r.executionId));
        } catch (err) {
          setError(err);
        }
      }}
    >
      <h3 id="start-title">Start an execution</h3>
      <label class="block">
        Input (JSON)
        <textarea rows={4} spellcheck={false} value={input} onInput={(e) => setInput(e.currentTarget.value)} />
      </label>
      <button type="submit">Start</button>
      <ProblemView error={error} />
    </form>
  );
}

function WorkflowView({ id, version, list }: { id: string; version?: string; list: ListedWorkflow[] | null }) {
  const [workflow, setWorkflow] = useState<StoredWorkflow | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setWorkflow(null);
    setError(null);
    api<StoredWorkflow>('GET', `/workflows/${enc(id)}${version ? `?version=${enc(version)}` : ''}`)
      .then(setWorkflow)
      .catch(setError);
  }, [id, version]);
  const chart = useMemo(() => (workflow ? chartOf(workflow.definition) : undefined), [workflow]);
  const versions = list ? (byId(list).get(id) ?? []) : [];
  return (
    <section aria-labelledby="workflow-title">
      <h1 id="workflow-title">
        Workflow {id}
        {workflow ? ` v${workflow.version}` : ''}
      </h1>
      <p>
        <a href={`#/executions?workflow=${enc(id)}`}>Its executions</a>
        {versions.length ? ' · versions: ' : ''}
        {versions.map((v) => (
          <a key={v.version} class="version" href={href('workflows', id, v.version)} aria-current={workflow?.version === v.version ? 'page' : undefined}>
            v{v.version}
          </a>
        ))}
      </p>
      <ProblemView error={error} />
      {workflow && chart ? (
        <>
          {workflow.definition.description ? <p>{workflow.definition.description}</p> : null}
          <p class="muted">Registered {time(workflow.createdAt)}{workflow.disabled ? ' · disabled: starting it is refused until it is enabled' : ''}</p>
          <div class="two-col">
            <section aria-labelledby="wf-graph-title">
              <h2 id="wf-graph-title">Statechart</h2>
              <StatechartView root={chart} active={new Set()} failed={new Set()} onSelect={() => undefined} />
            </section>
            <section aria-labelledby="wf-def-title">
              <h2 id="wf-def-title">Definition</h2>
              <Json value={workflow.definition} />
              <StartForm workflow={workflow} />
            </section>
          </div>
        </>
      ) : null}
    </section>
  );
}

function Editor({ onRegistered }: { onRegistered: (w: StoredWorkflow) => void }) {
  const [text, setText] = useState(TEMPLATE);
  const [error, setError] = useState<unknown>(null);
  const check = useMemo(() => checkDefinitionText(text), [text]);
  return (
    <form
      class="editor"
      aria-labelledby="register-title"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        try {
          onRegistered(await api<StoredWorkflow>('POST', '/workflows', check.document));
        } catch (err) {
          setError(err);
        }
      }}
    >
      <h2 id="register-title">Register a workflow</h2>
      <label class="block">
        Definition (JSON or YAML)
        <textarea rows={18} spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} aria-describedby="definition-check" aria-invalid={check.problems.length > 0} />
      </label>
      <div id="definition-check" aria-live="polite">
        {check.problems.length ? (
          <ul class="problems">
            {check.problems.map((p, i) => (
              <li key={i}>
                {p.line ? <span class="pos">line {p.line}, column {p.col}</span> : null} {p.path ? <code>{p.path}</code> : null} {p.message}
              </li>
            ))}
          </ul>
        ) : (
          <p class="ok">Valid definition.</p>
        )}
      </div>
      <button type="submit" disabled={check.problems.length > 0}>
        Register
      </button>
      <ProblemView error={error} />
    </form>
  );
}

export function WorkflowsPage({ id, version }: { id?: string; version?: string }) {
  const [reload, setReload] = useState(0);
  const { list, error } = useWorkflows(reload);
  if (id) return <WorkflowView id={id} version={version} list={list} />;
  return (
    <section aria-labelledby="workflows-title">
      <h1 id="workflows-title">Workflows</h1>
      <ProblemView error={error} />
      {list ? <WorkflowList list={list} /> : <p class="muted">Loading…</p>}
      <Editor
        onRegistered={(w) => {
          setReload((r) => r + 1);
          navigate(href('workflows', w.id, w.version));
        }}
      />
    </section>
  );
}
