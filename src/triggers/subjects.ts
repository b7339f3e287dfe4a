/** NATS subject matching (`*` one token, a final `>` the rest), for routing events to triggers and waits. Pure. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** Headers worth recording with an event: everything but what looks like a credential. */
const SECRET_HEADER = /auth|token|secret|passw|cookie|credential|signature|api[-_]?key/i;

export function publicHeaders(headers: { keys(): string[]; get(k: string): string } | undefined): Record<string, string> | undefined {
  if (!headers) return undefined;
  const out: Record<string, string> = {};
  for (const k of headers.keys()) if (!SECRET_HEADER.test(k)) out[k] = headers.get(k);
  return Object.keys(out).length ? out : undefined;
}
