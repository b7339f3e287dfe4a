/** Signals for one attempt: the caller's cancellation plus a per-attempt timeout, told apart. */
import { LlmCancelledError } from './errors.js';

export interface AttemptScope {
  /** Aborts when the caller's signal does, when the timeout fires, or on abort(). */
  readonly signal: AbortSignal;
  readonly timedOut: boolean;
  abort(): void;
  /** Stops the timer and detaches from the caller's signal. */
  dispose(): void;
}

export function attemptScope(parent: AbortSignal | undefined, timeoutMs: number): AttemptScope {
  const controller = new AbortController();
  let timedOut = false;
  const onParent = () => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener('abort', onParent, { once: true });
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    abort: () => controller.abort(),
    dispose() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

/** Waits `ms`; rejects with LlmCancelledError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new LlmCancelledError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new LlmCancelledError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
