/** Connecting to NATS the same way everywhere (CLI, service, tests, bench). */
import { connect, type NatsConnection } from '@nats-io/transport-node';

export async function connectNats(url: string, name = 'smartspec'): Promise<NatsConnection> {
  return connect({
    servers: url.split(",").map((s) => s.trim()).filter(Boolean), // NATS_URL may list a cluster
    name,
    // Building an Error with a stack for every request costs about half the CPU of a
    // pipelined publish; we do not need async stack traces from the client.
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: 5000,
  });
}
