/**
 * The Gantt (model/timeline.ts) drawn with positioned elements: a row per
 * step, a bar per attempt; rows of a parallel group framed together. A bar
 * is a button: clicking it picks the step (for a resume).
 */
import { duration } from '../format.js';
import { positionOf, type Bar, type Row, type Timeline } from '../model/timeline.js';

const pct = (fraction: number) => `${(fraction * 100).toFixed(3)}%`;

const KIND_LABEL: Record<Bar['kind'], string> = { run: 'ran', wait: 'waited', backoff: 'backoff before the next attempt', skipped: 'skipped' };

type At = (t: number) => number;

function BarView({ bar, at, onSelect }: { bar: Bar; at: At; onSelect: (stepId: string) => void }) {
  const length = bar.end - bar.start;
  const label = `${bar.stepId}${bar.kind === 'backoff' || bar.kind === 'skipped' ? '' : ` attempt ${bar.attempt}`}: ${KIND_LABEL[bar.kind]} ${duration(length)}${bar.open ? ', still going' : bar.kind === 'backoff' ? '' : `, ${bar.outcome}`}`;
  return (
    <button
      type="button"
      class={`bar bar-${bar.kind} outcome-${bar.outcome}${bar.open ? ' open' : ''}`}
      style={{ left: pct(at(bar.start)), width: pct(at(bar.end) - at(bar.start)) }}
      data-step={bar.stepId}
      data-kind={bar.kind}
      data-attempt={bar.attempt}
      data-start={bar.start}
      data-end={bar.end}
      aria-label={label}
      title={label}
      onClick={() => onSelect(bar.stepId)}
    >
      <span class="bar-text">{bar.kind === 'backoff' ? '' : bar.attempt > 1 ? `#${bar.attempt}` : ''}</span>
    </button>
  );
}

function RowView({ row, at, selected, onSelect, markers }: { row: Row; at: At; selected?: string; onSelect: (s: string) => void; markers: Timeline['markers'] }) {
  return (
    <div class={`tl-row${row.stepId === selected ? ' selected' : ''}`} data-step={row.stepId} role="listitem">
      <div class="tl-label">
        <span>{row.stepId}</span> <small class="muted">{row.type}</small>
      </div>
      <div class="tl-track">
        {markers.map((m, i) => (
          <span key={i} class={`tl-marker marker-${m.kind}`} style={{ left: pct(at(m.at)) }} aria-hidden="true" />
        ))}
        {row.bars.map((bar) => (
          <BarView key={`${bar.seq}-${bar.kind}`} bar={bar} at={at} onSelect={onSelect} />
        ))}
      </div>
    </div>
  );
}

export function TimelineView({ timeline, selected, onSelect }: { timeline: Timeline; selected?: string; onSelect: (stepId: string) => void }) {
  const { span, rows, markers, gaps } = timeline;
  const at: At = (t) => positionOf(timeline, t);
  // Consecutive rows of one parallel group are framed together.
  const blocks: { group?: number; rows: Row[] }[] = [];
  for (const row of rows) {
    const last = blocks[blocks.length - 1];
    if (row.group !== undefined && last?.group === row.group) last.rows.push(row);
    else blocks.push({ group: row.group, rows: [row] });
  }
  // Ticks at the start, the end, and both sides of every cut gap; others where there is room.
  const candidates: { t: number; align: string }[] = gaps.length
    ? [{ t: 0, align: 'first' }, ...gaps.flatMap((g) => [{ t: g.from, align: 'last' }, { t: g.to, align: 'first' }]), { t: span, align: 'last' }]
    : [0, 0.25, 0.5, 0.75, 1].map((f, i) => ({ t: f * span, align: i === 0 ? 'first' : i === 4 ? 'last' : '' }));
  // Labels too close to the one before would overlap: the end's label wins over its neighbour.
  const ticks: typeof candidates = [];
  for (const tick of candidates) {
    while (ticks.length > 1 && at(tick.t) - at(ticks[ticks.length - 1].t) < 0.1) ticks.pop();
    if (!ticks.length || at(tick.t) - at(ticks[ticks.length - 1].t) >= 0.1 || tick === candidates[candidates.length - 1]) ticks.push(tick);
  }
  return (
    <div class="timeline" data-span={span}>
      <div class="tl-axis" aria-hidden="true">
        <div class="tl-label" />
        <div class="tl-track">
          {ticks.map(({ t, align }, i) => (
            <span key={i} class={`tl-tick ${align}`} style={{ left: pct(at(t)) }}>
              {duration(t)}
            </span>
          ))}
          {gaps.map((g, i) => (
            <span key={`gap${i}`} class="tl-gap" style={{ left: pct(at(g.from)), width: pct(at(g.to) - at(g.from)) }} title={`${duration(g.to - g.from)} with nothing running, drawn narrow`} />
          ))}
        </div>
      </div>
      <div role="list" aria-label="Steps over time">
        {blocks.map((b, i) =>
          b.group === undefined ? (
            <RowView key={i} row={b.rows[0]} at={at} selected={selected} onSelect={onSelect} markers={markers} />
          ) : (
            <div key={i} class="tl-group" role="listitem" aria-label={`parallel group: ${b.rows.map((r) => r.stepId).join(', ')}`}>
              <span class="tl-group-label">parallel</span>
              <div role="list">
                {b.rows.map((row) => (
                  <RowView key={row.stepId} row={row} at={at} selected={selected} onSelect={onSelect} markers={markers} />
                ))}
              </div>
            </div>
          ),
        )}
      </div>
      {markers.length ? (
        <p class="tl-legend muted">
          {markers.map((m, i) => (
            <span key={i} class={`legend-marker marker-${m.kind}`}>
              {m.label} at {duration(m.at)}
            </span>
          ))}
        </p>
      ) : null}
      <p class="tl-legend muted" aria-hidden="true">
        <span class="swatch bar-run outcome-completed" /> ran <span class="swatch bar-wait outcome-completed" /> waiting
        <span class="swatch bar-backoff" /> backoff <span class="swatch bar-run outcome-failed" /> failed
        {gaps.length ? (
          <>
            {' '}
            <span class="swatch tl-gap" /> idle time cut short
          </>
        ) : null}
      </p>
    </div>
  );
}
