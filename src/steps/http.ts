/** The `http` step: a real request; the response becomes the output. */
import { StepError } from '../errors.js';
import type { Step } from '../../machines/definition.js';
import type { StepExecutor } from './types.js';

type HttpStep = Extract<Step, { type: 'http' }>;

/** 408, 429 and 5xx may succeed on another attempt; other statuses will not. */
const retryableStatus = (status: number) => status === 408 || status === 429 || status >= 500;

export const runHttp: StepExecutor<HttpStep> = async ({ step, signal, maxOutputBytes }) => {
  const { method, url, headers = {}, body } = step.request;
  const hasBody = body !== undefined && method !== 'GET' && method !== 'HEAD';
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: hasBody && typeof body !== 'string' ? { 'content-type': 'application/json', ...headers } : headers,
      body: hasBody ? (typeof body === 'string' ? body : JSON.stringify(body)) : undefined,
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new StepError('HTTP_UNREACHABLE', `${method} ${url} failed: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, { retryable: true, cause: err });
  }
  const text = await readBody(res, maxOutputBytes, `${method} ${url}`);
  const type = res.headers.get('content-type') ?? '';
  let parsed: unknown = text;
  if (type.includes('json') && text) {
    try { parsed = JSON.parse(text); } catch { /* keep the text */ }
  }
  if (!res.ok) {
    throw new StepError(`HTTP_${res.status}`, `${method} ${url} answered ${res.status}${text ? `: ${text.slice(0, 300)}` : ''}`, {
      retryable: retryableStatus(res.status),
      details: { status: res.status },
    });
  }
  return { output: { status: res.status, body: parsed }, latencyMs: Math.round(performance.now() - started) };
};

/**
 * The response body as text, read only up to `maxBytes`: a larger body is not
 * downloaded to the end (the connection is dropped) and fails the step for good.
 */
async function readBody(res: Response, maxBytes: number | undefined, what: string): Promise<string> {
  if (maxBytes === undefined || !res.body) return res.text();
  const tooLarge = (bytes?: number) =>
    new StepError('OUTPUT_TOO_LARGE', `${what}: the response body is ${bytes === undefined ? 'larger than' : `${bytes} bytes, over`} the limit of ${maxBytes} bytes (SMARTSPEC_PAYLOAD_MAX_BYTES)`, {
      details: { maxBytes, ...(bytes !== undefined ? { bytes } : {}) },
    });
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body.cancel().catch(() => undefined);
    throw tooLarge(declared);
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}
