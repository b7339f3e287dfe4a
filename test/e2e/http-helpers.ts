/**
 * Helpers for the HTTP end-to-end tests (test/e2e/http-*.test.ts): reading an
 * execution's log over HTTP, waiting on it by polling, checking problem+json
 * responses, and reading a Server-Sent Events stream with fetch.
 */
import { expect } from 'vitest';
import { http } from '../support/service.js';

export type HttpResult = Awaited<ReturnType<typeof http>>;

export interface EventView {
  seq: number;
  type: string;
  executionId: string;
  workflowId: string;
  at: string;
  state: unknown;
  hash: string;
  stepId?: string;
  attempt?: number;
  output?: unknown;
  error?: { code: string; message: string };
  [k: string]: unknown;
}

let counter = 0;
/** A workflow id unique to this process run, so listings filtered by it see one test's executions. */
export const uniq = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;

/** A fork-join definition: draft → {security, perf, legal} → merge. */
export function forkJoin(id: string) {
  return {
    id,
    steps: [
      { id: 'draft', type: 'transform', value: { text: 'Spec for {{input.feature}}' } },
      { id: 'security', type: 'transform', value: { verdict: 'ok', notes: 'reviewed: {{steps.draft.output.text}}' } },
      { id: 'perf', type: 'sleep', durationMs: 30 },
      { id: 'legal', type: 'transform', value: { ok: true } },
      { id: 'merge', type: 'transform', value: { security: '{{steps.security.output}}', perf: '{{steps.perf.output}}', legal: '{{steps.legal.output}}' } },
    ],
    parallel: [['security', 'perf', 'legal']],
  };
}

export async function events(base: string, id: string, from?: number): Promise<EventView[]> {
  const r = await http(base, 'GET', `/executions/${id}/events${from === undefined ? '' : `?from=${from}`}`);
  expect(r.status, r.text).toBe(200);
  return r.json.events as EventView[];
}

/** How many records of `type` (for `stepId`, when given) the log holds. */
export const count = (evs: EventView[], type: string, stepId?: string) =>
  evs.filter((e) => e.type === type && (stepId === undefined || e.stepId === stepId)).length;

/** Poll until `check` returns a value other than undefined/false (shared with the process tests). */
import { until } from '../support/processes.js';
import { SECURITY_HEADERS } from '../support/securityHeaders.js';
export { until };

/** Wait until the execution's log holds an event matching `pred`. */
export function waitForEvent(base: string, id: string, pred: (e: EventView) => boolean, what = 'an event', timeoutMs = 10_000) {
  return until(what, async () => {
    const r = await http(base, 'GET', `/executions/${id}/events`);
    return r.status === 200 ? (r.json.events as EventView[]).find(pred) : undefined;
  }, timeoutMs);
}

export { SECURITY_HEADERS };

export function expectSecurityHeaders(r: { headers: Headers }) {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) expect(r.headers.get(k), k).toBe(v);
  expect(r.headers.get('x-request-id')).toMatch(/\S/);
}

/**
 * The response is an RFC 9457 problem with this status and code, the security
 * headers, and no trace of server internals; returns the problem body.
 */
export function expectProblem(r: HttpResult, status: number, code: string) {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expectSecurityHeaders(r);
  expect(r.json).toMatchObject({ status, code, type: `urn:smartspec:problem:${code.toLowerCase().replace(/_/g, '-')}` });
  expect(typeof r.json.title).toBe('string');
  expect(typeof r.json.detail).toBe('string');
  expect(r.json.detail.length).toBeGreaterThan(0);
  expect(r.json.requestId).toBe(r.headers.get('x-request-id'));
  expectNoInternals(r.text);
  return r.json as { status: number; code: string; title: string; detail: string; instance?: string; errors?: { path: string; message: string }[]; [k: string]: unknown };
}

/** No stack frames, source paths or error class names in what a client sees. */
export function expectNoInternals(text: string) {
  expect(text).not.toMatch(/\bat [^\n]*\(?[^\s()]+:\d+:\d+\)?/); // a stack frame
  expect(text).not.toMatch(/"stack"/);
  expect(text).not.toMatch(/node_modules|\/work\/|\.ts:\d+|file:\/\//);
  expect(text).not.toMatch(/SyntaxError|TypeError|ZodError/);
}

export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
}

export interface SseResult {
  status: number;
  headers: Headers;
  frames: SseFrame[];
  /** The body finished (the server ended the stream) rather than the reader giving up. */
  ended: boolean;
  /** Non-SSE body (an error response). */
  text?: string;
}

/**
 * Open GET /executions/:id/events/stream and read frames until the server
 * ends the body, or `timeoutMs` passes (then `ended` is false). `onFrame` sees
 * each frame as it arrives (e.g. to act once the stream is live).
 */
export async function readSse(url: string, opts: { headers?: Record<string, string>; timeoutMs?: number; onFrame?: (f: SseFrame) => void | Promise<void> } = {}): Promise<SseResult> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? 10_000);
  try {
    let res: Response;
    try {
      res = await fetch(url, { headers: { accept: 'text/event-stream', ...opts.headers }, signal: controller.signal });
    } catch (err) {
      // Not even the response headers arrived in time: report it as a stream that never ended.
      if (controller.signal.aborted) return { status: 0, headers: new Headers(), frames: [], ended: false, text: 'no response headers before the timeout' };
      throw err;
    }
    if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      return { status: res.status, headers: res.headers, frames: [], ended: true, text: await res.text() };
    }
    const frames: SseFrame[] = [];
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let ended = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) { ended = true; break; }
        buffer += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const frame = parseFrame(block);
          if (frame) { frames.push(frame); await opts.onFrame?.(frame); }
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
    expect(buffer, 'no partial frame left when the stream ends').toBe('');
    return { status: res.status, headers: res.headers, frames, ended };
  } finally {
    clearTimeout(timer);
  }
}

function parseFrame(block: string): SseFrame | undefined {
  const frame: SseFrame = {};
  let any = false;
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue; // comment (heartbeat)
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'id' || field === 'event') { frame[field] = value; any = true; }
    else if (field === 'data') { frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`; any = true; }
  }
  return any ? frame : undefined;
}
