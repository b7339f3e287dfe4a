/**
 * The one place that maps error codes to HTTP statuses and renders RFC 9457
 * `application/problem+json` bodies. Routes just throw SmartSpecErrors; the
 * error-handling middleware calls `toProblem` on whatever reaches it.
 *
 * Choices worth knowing:
 * - BUDGET_EXCEEDED is 409 (not 422): the request is well-formed; it conflicts
 *   with the current state of a budget and may succeed once the budget changes.
 * - STEP_NOT_FOUND / CHECKPOINT_NOT_FOUND are 404 like every *_NOT_FOUND code
 *   (codes added later that end in _NOT_FOUND also map to 404).
 * - An unmapped SmartSpecError is a server fault: 500, or 503 when it says it is
 *   retryable (e.g. NATS unreachable), always with a generic detail.
 * - A 5xx never carries the error's own message unless the table exposes it.
 */
import { STATUS_CODES } from 'node:http';
import { SmartSpecError } from '../errors.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  code: string;
  [extension: string]: unknown;
}

interface Rule {
  status: number;
  title: string;
  /** 5xx details stay server-side unless a code opts in. */
  expose?: boolean;
}

const RULES: Record<string, Rule> = {
  // 400: the request itself is unusable
  INVALID_INPUT: { status: 400, title: 'Invalid input' },
  MALFORMED_JSON: { status: 400, title: 'Malformed JSON body' },
  // 401 / 403: identity and access (src/auth)
  UNAUTHENTICATED: { status: 401, title: 'Unauthorized' },
  FORBIDDEN: { status: 403, title: 'Forbidden' },
  // 404
  NOT_FOUND: { status: 404, title: 'Not Found' },
  EXECUTION_NOT_FOUND: { status: 404, title: 'Execution not found' },
  WORKFLOW_NOT_FOUND: { status: 404, title: 'Workflow not found' },
  CHECKPOINT_NOT_FOUND: { status: 404, title: 'Checkpoint not found' },
  STEP_NOT_FOUND: { status: 404, title: 'Step not found' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method Not Allowed' },
  // 409: well-formed, but conflicts with the current state
  INVALID_EXECUTION_STATE: { status: 409, title: 'Invalid execution state' },
  EXECUTION_OWNED: { status: 409, title: 'Execution owned by another process' },
  EXECUTION_EXISTS: { status: 409, title: 'Execution already exists' },
  SCHEDULE_EXISTS: { status: 409, title: 'Schedule already exists' },
  WORKFLOW_DISABLED: { status: 409, title: 'Workflow disabled' },
  CONCURRENT_WRITE: { status: 409, title: 'Concurrent write' },
  BUDGET_EXCEEDED: { status: 409, title: 'Budget exceeded' },
  HISTORY_LIMIT: { status: 409, title: 'History limit reached' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload Too Large' },
  COMMAND_TOO_LARGE: { status: 413, title: 'Payload Too Large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported Media Type' },
  // 422: well-formed JSON whose content is semantically invalid
  INVALID_DEFINITION: { status: 422, title: 'Invalid workflow definition' },
  VALIDATION_FAILED: { status: 422, title: 'Request validation failed' },
  NO_STEPS: { status: 422, title: 'No steps selected' },
  INPUT_TOO_DEEP: { status: 422, title: 'Input nested too deeply' },
  RATE_LIMITED: { status: 429, title: 'Too Many Requests' },
  TENANT_LIMIT_REACHED: { status: 429, title: 'Too many running executions' },
  // Integrity failure of the checkpoint log: the operator and client must see which record.
  LOG_TAMPERED: { status: 500, title: 'Execution log failed verification', expose: true },
  PAYLOAD_TAMPERED: { status: 500, title: 'Stored value failed verification', expose: true },
  PAYLOAD_MISSING: { status: 500, title: 'Stored value missing', expose: true },
  NOT_READY: { status: 503, title: 'Service not ready', expose: true },
};

const GENERIC_DETAIL = 'An unexpected error occurred. Quote the request id when reporting it.';

/** HTTP status for a stable error code (undefined when the code is not a client-facing one). */
export function statusForCode(code: string): number | undefined {
  return RULES[code]?.status ?? (code.endsWith('_NOT_FOUND') ? 404 : undefined);
}

export function problemType(code: string): string {
  return `urn:smartspec:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

/** 'Bad Request' → 'BAD_REQUEST': a stable code for plain HTTP errors. */
function codeForStatus(status: number): string {
  return (STATUS_CODES[status] ?? 'Error').toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

const RESERVED = new Set(['type', 'title', 'status', 'detail', 'instance', 'code', 'requestId']);

/** Details become extension members; `issues` ({path, message}[]) is published as `errors`. */
function extensions(details: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details ?? {})) {
    if (k === 'issues') out.errors = v;
    else if (!RESERVED.has(k)) out[k] = v;
  }
  return out;
}

export interface ProblemContext {
  /** The request path: the occurrence this problem is about. */
  instance?: string;
  requestId?: string;
}

export interface RenderedProblem {
  problem: Problem;
  /** Headers the thrower asked for (http-errors' `headers`, e.g. Allow). */
  headers: Record<string, string>;
  /** True when the error is a server fault the caller must log with its stack. */
  internal: boolean;
}

function build(code: string, status: number, title: string, detail: string, pc: ProblemContext, ext: Record<string, unknown> = {}): Problem {
  return {
    ...ext,
    type: problemType(code),
    title,
    status,
    detail,
    ...(pc.instance ? { instance: pc.instance } : {}),
    code,
    ...(pc.requestId ? { requestId: pc.requestId } : {}),
  };
}

/** A problem for a bare status (e.g. a 405 the router set without a body). */
export function problemForStatus(status: number, pc: ProblemContext = {}, detail?: string): Problem {
  const code = status === 404 ? 'NOT_FOUND' : codeForStatus(status);
  const title = STATUS_CODES[status] ?? 'Error';
  const text = detail ?? (status >= 500 ? GENERIC_DETAIL : `${title}`);
  return build(code, status, title, text, pc);
}

/** Turn anything thrown into the problem to send. Never leaks a 5xx message or a stack. */
export function toProblem(err: unknown, pc: ProblemContext = {}): RenderedProblem {
  if (err instanceof SmartSpecError) {
    const status = statusForCode(err.code);
    if (status !== undefined) {
      const rule = RULES[err.code];
      const expose = status < 500 || rule?.expose === true;
      const title = rule?.title ?? STATUS_CODES[status] ?? 'Error';
      return {
        problem: build(err.code, status, title, expose ? err.message : GENERIC_DETAIL, pc, expose ? extensions(err.details) : {}),
        headers: {},
        internal: status >= 500,
      };
    }
    const unavailable = err.retryable;
    return {
      problem: problemForStatus(unavailable ? 503 : 500, pc),
      headers: {},
      internal: true,
    };
  }

  // http-errors (ctx.throw, koa, the router, raw-body): trust only 4xx with `expose`.
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown; headers?: unknown } | null;
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500 && STATUS_CODES[status]) {
    const detail = e?.expose === true && typeof e.message === 'string' ? e.message : undefined;
    return { problem: problemForStatus(status, pc, detail), headers: stringHeaders(e?.headers), internal: false };
  }
  if (status !== undefined && status >= 500 && STATUS_CODES[status]) {
    return { problem: problemForStatus(status, pc), headers: {}, internal: true };
  }
  // NATS unreachable, slow or failing over (timeouts, no responders, JetStream away): try again later.
  if (isNatsOutage(err)) {
    return { problem: problemForStatus(503, pc, 'the message system is unavailable right now; retry shortly'), headers: { 'Retry-After': '2' }, internal: true };
  }
  return { problem: problemForStatus(500, pc), headers: {}, internal: true };
}

const NATS_OUTAGE = new Set(['TimeoutError', 'NoRespondersError', 'ConnectionError', 'ClosedConnectionError', 'DrainingConnectionError', 'JetStreamNotEnabled', 'RequestError']);

function isNatsOutage(err: unknown): boolean {
  for (let e = err as { name?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.name === 'string' && NATS_OUTAGE.has(e.name)) return true;
  }
  return false;
}

function stringHeaders(h: unknown): Record<string, string> {
  if (!h || typeof h !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    const lower = k.toLowerCase();
    // The problem body defines its own representation.
    if (lower === 'content-type' || lower === 'content-length') continue;
    if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  }
  return out;
}
