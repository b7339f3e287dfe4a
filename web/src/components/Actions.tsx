/**
 * What a user can do to an execution: resume it (from a step picked on the
 * timeline, the graph or here; optionally with edited steps), cancel it,
 * send a signal with a JSON payload. A refusal shows the API's problem+json.
 */
import { useEffect, useState } from 'preact/hooks';
import YAML from 'yaml';
import { api, enc } from '../api.js';
import { isTerminal, type Definition, type ExecutionSummary } from '../model/records.js';
import { ProblemView } from './Problem.js';

type Outcome = { ok: string } | { error: unknown } | null;

function Result({ outcome }: { outcome: Outcome }) {
  if (!outcome) return null;
  if ('ok' in outcome) return <p class="ok" role="status">{outcome.ok}</p>;
  return <ProblemView error={outcome.error} />;
}

function useAction(onDone: () => void) {
  const [outcome, setOutcome] = useState<Outcome>(null);
  const [busy, setBusy] = useState(false);
  const run = async (what: () => Promise<string>) => {
    setBusy(true);
    setOutcome(null);
    try {
      setOutcome({ ok: await what() });
      onDone();
    } catch (error) {
      setOutcome({ error });
    } finally {
      setBusy(false);
    }
  };
  return { outcome, busy, run };
}

interface Props {
  summary: ExecutionSummary;
  definition?: Definition;
  selected?: string;
  onSelect: (stepId: string) => void;
  onAction: () => void;
}

function ResumeForm({ summary, definition, selected, onSelect, onAction }: Props) {
  const { outcome, busy, run } = useAction(onAction);
  const [edit, setEdit] = useState(false);
  const [text, setText] = useState('');
  const steps = definition?.steps ?? [];
  return (
    <form
      class="action"
      aria-labelledby="resume-title"
      onSubmit={(e) => {
        e.preventDefault();
        void run(async () => {
          let doc: unknown;
          if (edit) {
            try {
              doc = YAML.parse(text);
            } catch (err) {
              throw new Error(`the edited steps are not valid JSON or YAML: ${(err as Error).message.split('\n')[0]}`);
            }
          }
          await api('POST', `/executions/${enc(summary.executionId)}/resume`, { ...(selected ? { fromStep: selected } : {}), ...(edit ? { steps: doc } : {}) });
          return selected ? `Resuming from ${selected}.` : 'Resuming.';
        });
      }}
    >
      <h3 id="resume-title">Resume</h3>
      <label>
        From step
        <select value={selected ?? ''} onChange={(e) => onSelect(e.currentTarget.value)}>
          <option value="">where it stopped</option>
          {steps.map((s) => (
            <option key={s.id} value={s.id}>
              {s.id}
            </option>
          ))}
        </select>
      </label>
      <label class="check">
        <input
          type="checkbox"
          checked={edit}
          onChange={(e) => {
            // Filled from the recorded steps when the box opens, not on every re-read of the execution
            // (an effect did that, and replaced what the user was typing: a resume then ran the old steps).
            const on = e.currentTarget.checked;
            if (on) setText(definition ? JSON.stringify({ steps: definition.steps, parallel: definition.parallel }, null, 2) : '');
            setEdit(on);
          }}
        />{' '}
        with edited steps
      </label>
      {edit ? (
        <label class="block">
          Steps (JSON or YAML: a definition whose steps replace the recorded ones)
          <textarea rows={12} spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
      ) : null}
      <button type="submit" disabled={busy}>
        Resume
      </button>
      <Result outcome={outcome} />
    </form>
  );
}

function CancelForm({ summary, onAction }: Props) {
  const { outcome, busy, run } = useAction(onAction);
  const [reason, setReason] = useState('');
  return (
    <form
      class="action"
      aria-labelledby="cancel-title"
      onSubmit={(e) => {
        e.preventDefault();
        void run(async () => {
          await api('POST', `/executions/${enc(summary.executionId)}/cancel`, reason ? { reason } : {});
          return 'Cancelling.';
        });
      }}
    >
      <h3 id="cancel-title">Cancel</h3>
      <label>
        Reason <input value={reason} maxLength={1000} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <button type="submit" class="danger" disabled={busy || isTerminal(summary.status)}>
        Cancel execution
      </button>
      <Result outcome={outcome} />
    </form>
  );
}

function SignalForm({ summary, definition, onAction }: Props) {
  const { outcome, busy, run } = useAction(onAction);
  const names = (definition?.steps ?? []).flatMap((s) => (s.type === 'signal' ? [s.name ?? s.id] : []));
  const [name, setName] = useState('');
  const [payload, setPayload] = useState('{}');
  useEffect(() => {
    if (!name && names.length) setName(names[0]);
  }, [names.join()]);
  return (
    <form
      class="action"
      aria-labelledby="signal-title"
      onSubmit={(e) => {
        e.preventDefault();
        void run(async () => {
          let body: unknown;
          try {
            body = JSON.parse(payload);
          } catch (err) {
            throw new Error(`the payload is not JSON: ${(err as Error).message}`);
          }
          const r = await api<{ stepId: string }>('POST', `/executions/${enc(summary.executionId)}/signals/${enc(name)}`, body);
          return `Signal ${name} sent to step ${r.stepId}.`;
        });
      }}
    >
      <h3 id="signal-title">Send a signal</h3>
      <label>
        Signal name
        <input value={name} list="signal-names" required onInput={(e) => setName(e.currentTarget.value)} />
        <datalist id="signal-names">
          {names.map((n) => (
            <option key={n} value={n} />
          ))}
        </datalist>
      </label>
      <label class="block">
        Payload (a JSON object or array)
        <textarea rows={4} spellcheck={false} value={payload} onInput={(e) => setPayload(e.currentTarget.value)} />
      </label>
      <button type="submit" disabled={busy || !name}>
        Send signal
      </button>
      <Result outcome={outcome} />
    </form>
  );
}

export function Actions(props: Props) {
  return (
    <div class="actions">
      <ResumeForm {...props} />
      <SignalForm {...props} />
      <CancelForm {...props} />
    </div>
  );
}
