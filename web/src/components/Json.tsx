/** A JSON value, pretty-printed, in a scrollable block (focusable, so a keyboard can scroll it). */
import { json } from '../format.js';

export function Json({ value }: { value: unknown }) {
  if (value === undefined) return <span class="muted">none</span>;
  return (
    <pre class="json" tabIndex={0}>
      {json(value)}
    </pre>
  );
}
