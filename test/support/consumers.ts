/**
 * JetStream consumers created on a real nats-server while something runs, seen
 * as the API requests that create them (a history read, a key listing: each
 * creates one), from a connection of its own.
 */
import { connectNats } from '../../src/nats/connect.js';

/** Consumers created while `fn` runs; `onStream`: only those on that stream. */
export async function consumersCreatedDuring(url: string, fn: () => Promise<unknown>, onStream?: string): Promise<number> {
  const watcher = await connectNats(url, 'consumer-watcher');
  let created = 0;
  const sub = watcher.subscribe('$JS.API.CONSUMER.CREATE.>', { callback: (_err, msg) => void ((!onStream || msg.subject.includes(onStream)) && created++) });
  await watcher.flush();
  try {
    await fn();
    await watcher.flush();
    return created;
  } finally {
    sub.unsubscribe();
    await watcher.close();
  }
}
