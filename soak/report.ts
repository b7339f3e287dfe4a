/** The soak's final table and the details behind each non-zero must-be-0 row. */

export interface Row {
  label: string;
  value: number;
  /** A row that must be 0 for the soak to pass. */
  mustBeZero?: boolean;
  note?: string;
  /** Indented under the row before it (a breakdown, informational). */
  sub?: boolean;
}

export function renderTable(rows: Row[]): string {
  const label = (r: Row) => (r.sub ? `  ${r.label}` : r.label);
  const w = Math.max(...rows.map((r) => label(r).length));
  const v = Math.max(...rows.map((r) => String(r.value).length));
  return rows
    .map((r) => {
      const verdict = r.mustBeZero ? (r.value === 0 ? 'ok   (must be 0)' : 'FAIL (must be 0)') : '';
      return `${label(r).padEnd(w)}  ${String(r.value).padStart(v)}  ${verdict.padEnd(16)}  ${r.note ?? ''}`.trimEnd();
    })
    .join('\n');
}

/** "a ×3, b ×1", most frequent first. */
export function tally(values: Iterable<string>): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`).join(', ');
}

/** A history on one line: `12:StepStarted/b#2 13:ExecutionResumed …`. */
export function compactHistory(events: { seq: number; type: string; stepId?: string; attempt?: number; reason?: string; error?: { code?: string } }[]): string {
  return events
    .map((e) => `${e.seq}:${e.type}${e.stepId ? `/${e.stepId}` : ''}${e.attempt ? `#${e.attempt}` : ''}${e.reason ? `(${e.reason})` : ''}${e.error?.code ? `[${e.error.code}]` : ''}`)
    .join(' ');
}
