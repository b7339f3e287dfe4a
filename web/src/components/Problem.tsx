/** A refusal from the API: its problem+json title, detail and field errors. */
import { ApiError } from '../api.js';

export function ProblemView({ error }: { error: unknown }) {
  if (!error) return null;
  const p = error instanceof ApiError ? error.problem : { title: 'Request failed', detail: (error as Error).message ?? String(error) };
  return (
    <div class="problem" role="alert">
      <strong>
        {p.title ?? 'Error'}
        {p.status ? ` (${p.status}${p.code ? ` ${p.code}` : ''})` : ''}
      </strong>
      {p.detail ? <p class="problem-detail">{p.detail}</p> : null}
      {Array.isArray(p.errors) && p.errors.length ? (
        <ul>
          {p.errors.map((e, i) => (
            <li key={i}>
              {e.path ? <code>{e.path}</code> : null} {e.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
