/**
 * The embedded nats-server of a data folder takes a token only its owner can
 * read: another local user (no token) cannot connect, so cannot publish a
 * signal; the folder's own commands connect with it. Real nats-servers.
 */
import { statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../../src/nats/connect.js';
import { openNats } from '../../src/nats/embedded.js';
import { acquireServer, serverStatus } from '../../src/nats/sharedServer.js';
import { killEmbeddedServer } from '../support/commands.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smartspec-embedded-token-'));
});
afterAll(async () => {
  killEmbeddedServer(dir);
  await rm(dir, { recursive: true, force: true });
});

describe('the embedded server token', () => {
  it('a client without the token is refused; the token file and config are owner-only; the folder\'s commands connect', async () => {
    const lease = await acquireServer(dir, 'test');
    try {
      expect(lease.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect((await readFile(join(dir, 'nats-token'), 'utf8')).trim()).toBe(lease.token);
      for (const f of ['nats-token', 'nats-server.conf']) expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);

      const anonymous = await connectNats(lease.url, 'anonymous', {}).catch((e: unknown) => e);
      expect(anonymous).toMatchObject({ code: 'NATS_AUTH_FAILED' });

      // The folder's own users: `smartspec nats status` (serverStatus) and a command (openNats;
      // last, as leases are per process and its close ends this one's).
      expect(await serverStatus(dir)).toMatchObject({ answering: true });
      const handle = await openNats('token-test', { SMARTSPEC_DATA_DIR: dir });
      expect(handle.url).toBe(lease.url);
      await handle.nc.flush();
      await handle.close();
    } finally {
      await lease.release();
    }
  });

  it('a new server gets a new token', async () => {
    const first = await acquireServer(dir, 'test');
    await first.release(); // the last user: the server stops
    const second = await acquireServer(dir, 'test');
    try {
      expect(second.started).toBe(true);
      expect(second.token).toBeDefined();
      expect(second.token).not.toBe(first.token);
    } finally {
      await second.release();
    }
  });
});
