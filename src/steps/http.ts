/** The `http` step: a real request under the outbound policy; the response becomes the output. */
import { SmartSpecError, StepError } from '../errors.js';
import type { Step } from '../../machines/definition.js';
import { guardedRequest, type GuardedResponse } from '../security/guardedHttp.js';
import { policyFromEnv, type OutboundPolicy } from '../security/outboundPolicy.js';
import type { StepExecutor } from './types.js';

type HttpStep = Extract<Step, { type: 'http' }>;

/** 408, 429 and 5xx may succeed on another attempt; other statuses will not. */
const retryableStatus = (status: number) => status === 408 || status === 429 || status >= 500;

/** An http executor that only reaches what `policy` allows (see src/security/outboundPolicy.ts). */
export function httpExecutor(policy: OutboundPolicy): StepExecutor<HttpStep> {
  return async ({ step, signal, maxOutputBytes }) => {
    const { method, url, headers = {}, body } = step.request;
    const hasBody = body !== undefined && method !== 'GET' && method !== 'HEAD';
    const textHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)]));
    const started = performance.now();
    let res: GuardedResponse;
    try {
      res = await guardedRequest(policy, {
        method,
        url,
        headers: hasBody && typeof body !== 'string' ? { 'content-type': 'application/json', ...textHeaders } : textHeaders,
        ...(hasBody ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
        signal,
        ...(maxOutputBytes !== undefined ? { maxBytes: maxOutputBytes } : {}),
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (err instanceof SmartSpecError) throw err;
      throw new StepError('HTTP_UNREACHABLE', `${method} ${url} failed: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, { retryable: true, cause: err });
    }
    let parsed: unknown = res.text;
    if (res.contentType.includes('json') && res.text) {
      try { parsed = JSON.parse(res.text); } catch { /* keep the text */ }
    }
    if (res.status < 200 || res.status > 299) {
      throw new StepError(`HTTP_${res.status}`, `${method} ${url} answered ${res.status}${res.text ? `: ${res.text.slice(0, 300)}` : ''}`, {
        retryable: retryableStatus(res.status),
        details: { status: res.status },
      });
    }
    return { output: { status: res.status, body: parsed }, latencyMs: Math.round(performance.now() - started) };
  };
}

/** The http executor with the policy of this process's environment (HTTP_STEP_ALLOW). */
export const httpExecutorFromEnv = (env: NodeJS.ProcessEnv = process.env): StepExecutor<HttpStep> => httpExecutor(policyFromEnv(env));
