/** Turns the collected samples into the JSON record and the printed table. */
import type { Better, FigureSpec, RatioSpec, Sample } from './section.js';
import { pairRatios, summarize, type Summary } from './stats.js';

export interface SectionRecord {
  name: string;
  title: string;
  figures: FigureSpec[];
  ratios: RatioSpec[];
  params: Record<string, string | number | boolean>;
  samples: Sample[];
  error?: string;
  skipped?: string;
}

export interface FigureResult extends Summary {
  label: string;
  unit: string;
  better: Better;
}

export interface RatioResult extends Summary {
  label: string;
  numerator: string;
  denominator: string;
}

export interface SectionResult {
  title: string;
  status: 'ok' | 'failed' | 'skipped';
  error?: string;
  skipped?: string;
  /** Counted runs that completed. */
  runs: number;
  params: Record<string, string | number | boolean>;
  figures: Record<string, FigureResult>;
  ratios: Record<string, RatioResult | { label: string; numerator: string; denominator: string; skipped: string }>;
}

/** Summaries per figure, then ratios pair by pair from the same-run samples. */
export function buildResults(records: SectionRecord[]): Record<string, SectionResult> {
  // All samples by qualified key, to resolve ratios that cross sections.
  const byKey = new Map<string, number[]>();
  for (const r of records) {
    for (const f of r.figures) byKey.set(`${r.name}.${f.key}`, r.samples.map((s) => s[f.key]));
  }
  const out: Record<string, SectionResult> = {};
  for (const r of records) {
    const figures: SectionResult['figures'] = {};
    if (r.samples.length > 0) {
      for (const f of r.figures) {
        figures[f.key] = { label: f.label, unit: f.unit, better: f.better, ...summarize(r.samples.map((s) => s[f.key])) };
      }
    }
    const ratios: SectionResult['ratios'] = {};
    for (const q of r.ratios) {
      const base = { label: q.label, numerator: qualify(r.name, q.numerator), denominator: qualify(r.name, q.denominator) };
      const num = byKey.get(base.numerator);
      const den = byKey.get(base.denominator);
      if (!num || !den) {
        ratios[q.key] = { ...base, skipped: `unknown figure ${!num ? base.numerator : base.denominator}` };
      } else if (num.length === 0 || num.length !== den.length) {
        ratios[q.key] = { ...base, skipped: `unequal run counts (${num.length} vs ${den.length})` };
      } else {
        ratios[q.key] = { ...base, ...summarize(pairRatios(num, den)) };
      }
    }
    out[r.name] = {
      title: r.title,
      status: r.error ? 'failed' : r.skipped ? 'skipped' : 'ok',
      ...(r.error ? { error: r.error } : {}),
      ...(r.skipped ? { skipped: r.skipped } : {}),
      runs: r.samples.length,
      params: r.params,
      figures,
      ratios,
    };
  }
  return out;
}

/** `x` inside section `s` means `s.x`; `other:x` means figure `x` of section `other`. */
function qualify(section: string, key: string): string {
  const colon = key.indexOf(':');
  return colon < 0 ? `${section}.${key}` : `${key.slice(0, colon)}.${key.slice(colon + 1)}`;
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function renderTable(results: Record<string, SectionResult>): string {
  const rows: string[][] = [];
  const lines: string[] = [];
  const heads = ['figure', 'median', 'range (min–max)', 'unit'];
  for (const [name, s] of Object.entries(results)) {
    rows.push([`§ ${s.title}  [${name}]`]);
    const params = Object.entries(s.params).map(([k, v]) => `${k}=${v}`).join(' ');
    if (params) rows.push([`  (${params})`]);
    if (s.status === 'failed') rows.push([`  FAILED: ${s.error ?? 'unknown error'}`]);
    if (s.status === 'skipped') { rows.push([`  skipped: ${s.skipped}`]); continue; }
    for (const f of Object.values(s.figures)) {
      rows.push([`  ${f.label} ${f.better === 'higher' ? '↑' : '↓'}`, formatNumber(f.median), `${formatNumber(f.min)}–${formatNumber(f.max)}`, f.unit]);
    }
    for (const q of Object.values(s.ratios)) {
      if ('skipped' in q) rows.push([`  ${q.label}`, '—', `skipped: ${q.skipped}`, '']);
      else rows.push([`  ${q.label}`, `${q.median.toFixed(2)}×`, `${q.min.toFixed(2)}–${q.max.toFixed(2)}×`, 'ratio, same-run pairs']);
    }
  }
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length > 1).map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : i < 3 ? c.padStart(widths[i]) : c)).join('  ');
  lines.push(fmt(heads), widths.map((w) => '─'.repeat(w)).join('  '));
  for (const r of rows) lines.push(r.length === 1 ? r[0] : fmt(r));
  return lines.join('\n');
}
