/** Each step: its definition (what it was given), output, error, attempts, model and token usage, latency. */
import { duration } from '../format.js';
import type { Definition, EventRecord, ExecutionSummary, Usage } from '../model/records.js';
import { Json } from './Json.js';

interface StepFacts { usage?: Usage; latencyMs?: number; model?: string }

function factsOf(records: EventRecord[]): Map<string, StepFacts> {
  const facts = new Map<string, StepFacts>();
  for (const r of records) {
    if (r.type !== 'StepCompleted') continue;
    const f = facts.get(r.stepId) ?? {};
    if (r.usage) {
      const u = f.usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
      f.usage = { promptTokens: u.promptTokens + r.usage.promptTokens, completionTokens: u.completionTokens + r.usage.completionTokens, totalTokens: u.totalTokens + r.usage.totalTokens };
    }
    if (r.latencyMs !== undefined) f.latencyMs = r.latencyMs;
    const model = (r.output as { model?: unknown } | null)?.model;
    if (typeof model === 'string') f.model = model;
    facts.set(r.stepId, f);
  }
  return facts;
}

export function Steps({ definition, summary, records, selected }: { definition?: Definition; summary: ExecutionSummary; records: EventRecord[]; selected?: string }) {
  if (!definition) return <p class="muted">Not started yet.</p>;
  const facts = factsOf(records);
  return (
    <div class="steps">
      {definition.steps.map((step) => {
        const s = summary.steps?.[step.id];
        const f = facts.get(step.id) ?? {};
        const { id: _id, type: _type, ...config } = step;
        const model = f.model ?? (step.type === 'llm' ? step.model : undefined);
        return (
          <details key={step.id} class={`step phase-${s?.phase ?? 'pending'}`} open={selected === step.id} data-step={step.id}>
            <summary>
              <strong>{step.id}</strong> <span class="muted">{step.type}</span> <span class={`phase phase-${s?.phase}`}>{s?.phase ?? 'pending'}</span>
              {s?.attempts ? <span class="muted"> · {s.attempts} attempt{s.attempts > 1 ? 's' : ''}</span> : null}
              {f.latencyMs !== undefined ? <span class="muted"> · {duration(f.latencyMs)}</span> : null}
              {f.usage ? <span class="muted"> · {f.usage.totalTokens.toLocaleString('en')} tokens</span> : null}
            </summary>
            <dl class="facts">
              {model ? (
                <>
                  <dt>Model</dt>
                  <dd>{model}</dd>
                </>
              ) : null}
              {f.usage ? (
                <>
                  <dt>Tokens</dt>
                  <dd>
                    {f.usage.promptTokens.toLocaleString('en')} prompt + {f.usage.completionTokens.toLocaleString('en')} completion = {f.usage.totalTokens.toLocaleString('en')}
                  </dd>
                </>
              ) : null}
              {s?.wakeAt ? (
                <>
                  <dt>Wakes at</dt>
                  <dd>{s.wakeAt}</dd>
                </>
              ) : null}
              {s?.deadline ? (
                <>
                  <dt>Deadline</dt>
                  <dd>{s.deadline}</dd>
                </>
              ) : null}
            </dl>
            <div class="step-io">
              <section>
                <h4>Input (definition)</h4>
                <Json value={config} />
              </section>
              <section>
                <h4>Output</h4>
                <Json value={s?.output} />
              </section>
              {s?.error ? (
                <section>
                  <h4>Error</h4>
                  <Json value={s.error} />
                </section>
              ) : null}
            </div>
          </details>
        );
      })}
    </div>
  );
}
