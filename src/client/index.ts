/**
 * `smartspec-orchestrator/client`: a typed HTTP client of the edge, built on
 * fetch alone, so it runs in Node (18+) and in browsers. Requests and answers
 * have the types of the schemas the edge validates with (src/contracts);
 * refusals throw the ApiError subclass of their status (./errors.ts).
 *
 *   const client = new SmartSpecClient({ baseUrl: 'http://127.0.0.1:3000', apiKey });
 *   const { executionId } = await client.start({ workflowId: 'spec-review', input: { feature: 'export' } });
 *   for await (const event of client.events(executionId)) console.log(event.seq, event.type);
 *   const output = await client.awaitResult(executionId);
 *   const { lastSeq } = await client.resume(failedId, { fromStep: 'tests' });
 *   await client.awaitResult(failedId, { afterSeq: lastSeq });
 */
import type {
  Checkpoint,
  Execution,
  ExecutionEntry,
  ExecutionEvent,
  ListExecutionsQuery,
  Resumed,
  ResumeExecutionRequest,
  StartedExecution,
  StartExecutionRequest,
  StoredWorkflow,
  WorkflowListEntry,
} from '../contracts/http.js';
import { errorFor, ExecutionFailedError } from './errors.js';
import { readSse } from './sse.js';

export * from './errors.js';
export type { SseMessage } from './sse.js';
export type {
  Checkpoint,
  Execution,
  ExecutionEntry,
  ExecutionEvent,
  ExecutionStatus,
  ListExecutionsQuery,
  Problem,
  Resumed,
  ResumeExecutionRequest,
  StartedExecution,
  StartExecutionRequest,
  StoredWorkflow,
  WorkflowListEntry,
} from '../contracts/http.js';

export interface ClientOptions {
  /** The edge, e.g. `http://127.0.0.1:3000` (a path prefix is kept). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Another fetch (a test's, a proxy-aware one); default: the global fetch. */
  fetch?: typeof fetch;
  /** Added to every request. */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface EventsOptions extends RequestOptions {
  /** The first sequence number to deliver (default: from the start). */
  from?: number;
}

/** An execution is over in these statuses (until a resume). */
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
/** Wait before reconnecting a dropped stream, unless the server said otherwise (`retry:`). */
const DEFAULT_RECONNECT_MS = 1000;
/** How often awaitResult looks whether a worker has taken a resume. */
const RESUME_POLL_MS = 100;

export class SmartSpecClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly headers: Record<string, string>;

  /** The workflow registry. */
  readonly workflows = {
    /** Register a definition: version 1, or the next version of an existing id. */
    register: (definition: Record<string, unknown>, options?: RequestOptions): Promise<StoredWorkflow> => this.request('POST', '/workflows', { body: definition, ...options }),
    list: async (options?: RequestOptions): Promise<WorkflowListEntry[]> => (await this.request<{ workflows: WorkflowListEntry[] }>('GET', '/workflows', options)).workflows,
    /** The latest version, or `version`. */
    get: (id: string, options: RequestOptions & { version?: number } = {}): Promise<StoredWorkflow> =>
      this.request('GET', `/workflows/${encodeURIComponent(id)}${query({ version: options.version })}`, options),
    /** Disable: its triggers and schedules start nothing and starting it is refused (409) until `enable`; running executions go on. */
    disable: (id: string, options?: RequestOptions): Promise<StoredWorkflow> => this.request('POST', `/workflows/${encodeURIComponent(id)}/disable`, options),
    enable: (id: string, options?: RequestOptions): Promise<StoredWorkflow> => this.request('POST', `/workflows/${encodeURIComponent(id)}/enable`, options),
    /** Delete every version: as disabling, for good; executions of it stay readable. */
    delete: async (id: string, options?: RequestOptions): Promise<void> => void (await this.send('DELETE', `/workflows/${encodeURIComponent(id)}`, options ?? {})),
  };

  constructor(options: ClientOptions | string) {
    const o = typeof options === 'string' ? { baseUrl: options } : options;
    this.baseUrl = o.baseUrl.replace(/\/+$/, '');
    // Called unbound: a browser's fetch throws "Illegal invocation" as a method of another object.
    this.fetchImpl = o.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.headers = { ...o.headers, ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) };
  }

  /** Start an execution (answered at once; the run goes on in a worker). The same `idempotencyKey` returns the first one. */
  start(request: StartExecutionRequest, options: RequestOptions & { idempotencyKey?: string } = {}): Promise<StartedExecution> {
    return this.request('POST', '/executions', { body: request, signal: options.signal, headers: options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {} });
  }

  /** Status, steps, output, error and token usage. */
  get(executionId: string, options?: RequestOptions): Promise<Execution> {
    return this.request('GET', `/executions/${encodeURIComponent(executionId)}`, options);
  }

  /** Executions, filtered as GET /executions filters them. */
  async list(filter: ListExecutionsQuery = {}, options?: RequestOptions): Promise<ExecutionEntry[]> {
    return (await this.request<{ executions: ExecutionEntry[] }>('GET', `/executions${query(filter)}`, options)).executions;
  }

  /** The log as it is now (from `from`). */
  async history(executionId: string, options: EventsOptions = {}): Promise<ExecutionEvent[]> {
    return (await this.request<{ events: ExecutionEvent[] }>('GET', `/executions/${encodeURIComponent(executionId)}/events${query({ from: options.from })}`, options)).events;
  }

  /** Where the execution can be resumed from. */
  async checkpoints(executionId: string, options?: RequestOptions): Promise<Checkpoint[]> {
    return (await this.request<{ checkpoints: Checkpoint[] }>('GET', `/executions/${encodeURIComponent(executionId)}/checkpoints`, options)).checkpoints;
  }

  /**
   * The log live (Server-Sent Events): every record from `from` on, as it is appended. Ends
   * after the record that ends the execution; a dropped connection is resumed where it
   * stopped (Last-Event-ID). Stop early with `break` or the signal.
   */
  async *events(executionId: string, options: EventsOptions = {}): AsyncGenerator<ExecutionEvent> {
    const path = `/executions/${encodeURIComponent(executionId)}/events/stream${query({ from: options.from })}`;
    let lastId: string | undefined;
    let reconnectMs = DEFAULT_RECONNECT_MS;
    for (;;) {
      const res = await this.send('GET', path, { signal: options.signal, headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) } });
      if (!res.body) throw new TypeError('this fetch does not stream response bodies');
      try {
        for await (const message of readSse(res.body, options.signal)) {
          if (message.retry !== undefined) reconnectMs = message.retry;
          if (message.event === 'end') return;
          if (message.id !== undefined) lastId = message.id;
          yield JSON.parse(message.data) as ExecutionEvent;
        }
      } catch (err) {
        if (options.signal?.aborted) throw err;
        // the connection broke mid-stream: reconnect below
      }
      if (options.signal?.aborted) throw options.signal.reason;
      await delay(reconnectMs, options.signal);
    }
  }

  /**
   * Wait for the execution to end: its output when it COMPLETED; an ExecutionFailedError
   * when it ended FAILED or CANCELLED. A WAITING execution is waited for (it needs a signal
   * or its timer); bound the wait with the signal (e.g. AbortSignal.timeout(ms)).
   * After a resume, pass its `lastSeq` as `afterSeq`: the end that counts is a later one
   * (until a worker takes the resume, the execution still shows its earlier end).
   */
  async awaitResult<Output = unknown>(executionId: string, options: RequestOptions & { afterSeq?: number } = {}): Promise<Output> {
    const { afterSeq = 0, signal } = options;
    let execution = await this.get(executionId, { signal });
    while ((execution.lastSeq ?? 0) <= afterSeq && afterSeq > 0) {
      await delay(RESUME_POLL_MS, signal);
      execution = await this.get(executionId, { signal });
    }
    while (!TERMINAL.has(execution.status)) {
      for await (const _ of this.events(executionId, { signal, from: execution.lastSeq === undefined ? 0 : execution.lastSeq + 1 })) {
        // followed to the end
      }
      execution = await this.get(executionId, { signal });
    }
    if (execution.status === 'COMPLETED') return execution.output as Output;
    throw new ExecutionFailedError(executionId, execution.status as 'FAILED' | 'CANCELLED', execution.error);
  }

  /** Resume a FAILED or CANCELLED execution (or re-run from a step): from `checkpointId` or `fromStep`, with `steps`: a corrected definition. */
  resume(executionId: string, request: ResumeExecutionRequest = {}, options?: RequestOptions): Promise<Resumed> {
    return this.request('POST', `/executions/${encodeURIComponent(executionId)}/resume`, { body: request, ...options });
  }

  cancel(executionId: string, reason?: string, options?: RequestOptions): Promise<{ executionId: string; cancelling: true }> {
    return this.request('POST', `/executions/${encodeURIComponent(executionId)}/cancel`, { body: reason === undefined ? {} : { reason }, ...options });
  }

  /** Deliver signal `name` to the step waiting for it; `payload` becomes that step's output. */
  signal(executionId: string, name: string, payload: unknown = {}, options?: RequestOptions): Promise<{ executionId: string; signal: string; stepId: string }> {
    return this.request('POST', `/executions/${encodeURIComponent(executionId)}/signals/${encodeURIComponent(name)}`, { body: payload, ...options });
  }

  private async request<T>(method: string, path: string, options: RequestOptions & { body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
    const res = await this.send(method, path, options);
    return (await res.json()) as T;
  }

  /** The response when it is a success; the typed error otherwise. */
  private async send(method: string, path: string, options: RequestOptions & { body?: unknown; headers?: Record<string, string> }): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.headers, ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.fetchImpl(this.baseUrl + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
    if (res.ok) return res;
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: kept as text for the error's detail
    }
    throw errorFor(res, body);
  }
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) search.set(k, String(v));
  const s = search.toString();
  return s ? `?${s}` : '';
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}
