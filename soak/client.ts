/** The soak's HTTP client for the edge: every request bounded in time, never throws on a status. */
export interface Answer {
  /** 0: no answer (connection refused, reset, timed out). */
  status: number;
  json: any;
  text: string;
}

export class EdgeClient {
  constructor(readonly base: string, private readonly timeoutMs = 10_000) {}

  async request(method: string, path: string, body?: unknown): Promise<Answer> {
    try {
      const res = await fetch(`${this.base}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await res.text();
      let json: unknown;
      try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
      return { status: res.status, json, text };
    } catch (err) {
      return { status: 0, json: undefined, text: (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message };
    }
  }
}

/** Run `fn` over `items`, at most `limit` at a time. */
export async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(lanes);
}
