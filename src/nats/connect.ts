/** Connecting to NATS the same way everywhere (CLI, service, tests, bench). */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { explainConnectError, natsAuthFromEnv } from './credentials.js';

/** Credentials and TLS come from `env` (NATS_USER, NATS_CREDS, NATS_TLS_CA, ...: credentials.ts). */
export async function connectNats(url: string, name = 'smartspec', env: NodeJS.ProcessEnv = process.env): Promise<NatsConnection> {
  const auth = natsAuthFromEnv(env);
  try {
    return await connect({
      servers: url.split(",").map((s) => s.trim()).filter(Boolean), // NATS_URL may list a cluster
      name,
      ...auth.options,
      // Building an Error with a stack for every request costs about half the CPU of a
      // pipelined publish; we do not need async stack traces from the client.
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5000,
    });
  } catch (err) {
    throw explainConnectError(err, auth);
  }
}
