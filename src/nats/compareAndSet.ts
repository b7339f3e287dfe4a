/** Compare-and-set on JetStream subjects and KV keys: the error that says another writer came first. */
import { JetStreamApiError } from '@nats-io/jetstream';

/** JetStream's answer to a compare-and-set that lost: "wrong last sequence" (10071). */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === 10071;
}
