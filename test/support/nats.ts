/**
 * Test harness: a real nats-server per test file, on a free loopback port with
 * a temporary store, stopped (and its store removed) after the file's tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';

export interface NatsFixture {
  /** Set once beforeAll has run. */
  server: NatsServer;
  url: string;
  storeDir: string;
}

/** Call at the top of a test file: starts one server for the file. */
export function useNatsServer(): NatsFixture {
  const fixture = {} as NatsFixture;
  beforeAll(async () => {
    fixture.storeDir = await mkdtemp(join(tmpdir(), 'smartspec-test-'));
    fixture.server = await startNatsServer({ storeDir: fixture.storeDir });
    fixture.url = fixture.server.url;
  });
  afterAll(async () => {
    await fixture.server?.stop();
    if (fixture.storeDir) await rm(fixture.storeDir, { recursive: true, force: true });
  });
  return fixture;
}
