/**
 * The edge's HTTP API from the page: same origin, the user's key (if any) as
 * a Bearer token, and refusals as ApiError carrying the problem+json body.
 */

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  errors?: { path?: string; message: string }[];
  [extension: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }
}

const KEY_STORAGE = 'smartspec.apiKey';
const listeners = new Set<() => void>();

/** The key lives for the browser tab only (sessionStorage): closing the tab forgets it. */
export function apiKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** Called when the edge answers 401: the page then asks for a key. */
export function onUnauthenticated(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function authHeaders(): Record<string, string> {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, {
    method,
    signal,
    headers: { Accept: 'application/json', ...authHeaders(), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    if (res.status === 401) listeners.forEach((l) => l());
    const problem = json && typeof json === 'object' ? (json as Problem) : { status: res.status, title: res.statusText, detail: text.slice(0, 500) };
    throw new ApiError(res.status, problem);
  }
  return json as T;
}

export const enc = encodeURIComponent;
