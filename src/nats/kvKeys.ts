/**
 * The keys of a KV bucket under a filter, read through an ordered consumer that
 * is deleted once they are read. (`keys()` of @nats-io/kv leaves its consumer
 * on the server for five minutes: one per call.)
 */
import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';

/** How long the server keeps the consumer if this process could not delete it (a lost connection). */
const IDLE_MS = 30_000;
const FETCH_EXPIRES_MS = 5_000;

export async function kvKeys(js: JetStreamClient, bucket: string, filter: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const consumer = await js.consumers.get(`KV_${bucket}`, {
    filter_subjects: prefix + filter,
    deliver_policy: DeliverPolicy.LastPerSubject,
    headers_only: true,
    inactive_threshold: IDLE_MS,
  });
  try {
    const keys: string[] = [];
    const pending = (await consumer.info(true)).num_pending;
    if (pending === 0) return keys;
    // A fetch, not a consume: should the consumer stall (a cluster fail-over), the listing ends at its expiry.
    const messages = await consumer.fetch({ max_messages: pending, expires: FETCH_EXPIRES_MS });
    try {
      for await (const m of messages) {
        const op = m.headers?.get('KV-Operation');
        if (op !== 'DEL' && op !== 'PURGE') keys.push(m.subject.slice(prefix.length));
        if (m.info.pending === 0) break;
      }
    } finally {
      await messages.close().catch(() => undefined);
    }
    return keys;
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}
