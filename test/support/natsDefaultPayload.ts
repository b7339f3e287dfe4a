/**
 * A nats-server with NATS's own default max_payload (1 MB) rather than the
 * repository's nats.conf (8 MB): the limit a deployment on a stock server has,
 * and the one the large-payload tests must hold against.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startNatsServer } from '../../src/nats/server.js';
import type { NatsFixture } from './nats.js';

export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

export function useNatsServerWithDefaultPayload(): NatsFixture {
  const fixture = {} as NatsFixture;
  beforeAll(async () => {
    fixture.storeDir = await mkdtemp(join(tmpdir(), 'smartspec-test-'));
    const conf = join(fixture.storeDir, 'nats.conf');
    await writeFile(conf, 'listen: 127.0.0.1:-1\njetstream {\n  max_file_store: 10GB\n}\n');
    fixture.server = await startNatsServer({ storeDir: fixture.storeDir, configFile: conf });
    fixture.url = fixture.server.url;
  });
  afterAll(async () => {
    await fixture.server?.stop();
    if (fixture.storeDir) await rm(fixture.storeDir, { recursive: true, force: true });
  });
  return fixture;
}
