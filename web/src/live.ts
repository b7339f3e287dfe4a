/**
 * The execution's SSE stream (GET /executions/:id/events/stream) read with
 * fetch, not EventSource: EventSource cannot send the Authorization header.
 * Resolves when the server ends the stream (`event: end`, or the connection
 * closes); rejects with the ApiError when the edge refuses it.
 */
import { createParser } from 'eventsource-parser';
import { ApiError, authHeaders, enc } from './api.js';
import type { EventRecord } from './model/records.js';

export async function followEvents(executionId: string, from: number, onRecord: (r: EventRecord) => void, signal: AbortSignal): Promise<'ended' | 'closed'> {
  const res = await fetch(`/executions/${enc(executionId)}/events/stream?from=${from}`, { headers: { Accept: 'text/event-stream', ...authHeaders() }, signal });
  if (!res.ok || !res.body) throw new ApiError(res.status, await res.json().catch(() => ({ status: res.status, title: res.statusText })));
  let ended = false;
  const parser = createParser({
    onEvent(event) {
      if (event.event === 'end') ended = true;
      else onRecord(JSON.parse(event.data) as EventRecord);
    },
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return ended ? 'ended' : 'closed';
    parser.feed(value);
    if (ended) {
      await reader.cancel();
      return 'ended';
    }
  }
}
