/**
 * DNS rebinding (issue 11, item 5: "connect to the address that was checked").
 * Two real HTTP servers on the same port of two loopback addresses:
 * 127.0.0.2 is allowed (HTTP_STEP_ALLOW), 127.0.0.1 is not. A resolver that
 * answers the allowed address first and loopback on every later question is
 * the attacker's DNS: the request must reach the address that was checked,
 * and the forbidden server must see nothing. A pooled keep-alive socket is
 * not a way around a stricter policy either.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardedRequest, type Resolver } from '../../../src/security/guardedHttp.js';
import { parseAllowList } from '../../../src/security/outboundPolicy.js';

const hits = { '127.0.0.1': 0, '127.0.0.2': 0 };
const servers: Server[] = [];
let port = 0;

/** A server on `host` that counts requests and says which address it is. */
function listen(host: keyof typeof hits, onPort: number): Promise<Server> {
  const server = createServer((req, res) => {
    hits[host]++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ server: host }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(onPort, host, () => resolve(server));
  });
}

beforeAll(async () => {
  // The same port on both addresses, so only the address decides which server answers.
  for (let attempt = 0; !port; attempt++) {
    const allowed = await listen('127.0.0.2', 0);
    const p = (allowed.address() as AddressInfo).port;
    try {
      servers.push(allowed, await listen('127.0.0.1', p));
      port = p;
    } catch (err) {
      await new Promise((r) => allowed.close(r));
      if (attempt > 20) throw err;
    }
  }
});
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
});

const at = (address: string): LookupAddress => ({ address, family: 4 });

/** The attacker's DNS: `first` on the first question, `then` on every later one; counts the questions. */
function rebinding(first: LookupAddress[], then: LookupAddress[]): Resolver & { questions: number } {
  const resolver = Object.assign(async (hostname: string) => {
    expect(hostname).toMatch(/\.rebind\.test$/);
    return resolver.questions++ === 0 ? first : then;
  }, { questions: 0 });
  return resolver;
}

const get = (allow: string, url: string, resolve?: Resolver) =>
  guardedRequest(parseAllowList(allow), { method: 'GET', url, headers: {}, signal: AbortSignal.timeout(5000), resolve });

describe('an http step connects to the address that was checked', () => {
  it('a name answering an allowed address, then loopback: the request goes to the allowed address, loopback sees nothing', async () => {
    const before = { ...hits };
    const dns = rebinding([at('127.0.0.2')], [at('127.0.0.1')]);
    const res = await get('127.0.0.2', `http://a.rebind.test:${port}/x`, dns);
    expect(JSON.parse(res.text)).toEqual({ server: '127.0.0.2' });
    expect(dns.questions).toBe(1); // checked and connected from one answer
    expect(hits['127.0.0.1']).toBe(before['127.0.0.1']);
    expect(hits['127.0.0.2']).toBe(before['127.0.0.2'] + 1);
  });

  it('a name answering loopback is refused before any byte is sent', async () => {
    const before = { ...hits };
    const err = await get('127.0.0.2', `http://b.rebind.test:${port}/x`, rebinding([at('127.0.0.1')], [at('127.0.0.2')])).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'HTTP_DESTINATION_DENIED', retryable: false });
    expect((err as Error).message).toMatch(/b\.rebind\.test.*127\.0\.0\.1/);
    expect(hits).toEqual(before);
  });

  it('a name answering an allowed and a loopback address at once is refused: no server sees anything', async () => {
    const before = { ...hits };
    for (const answer of [[at('127.0.0.2'), at('127.0.0.1')], [at('127.0.0.1'), at('127.0.0.2')], [at('127.0.0.2'), { address: '::ffff:127.0.0.1', family: 6 }]]) {
      const err = await get('127.0.0.2', `http://c.rebind.test:${port}/x`, rebinding(answer, answer)).catch((e: unknown) => e);
      expect(err, JSON.stringify(answer)).toMatchObject({ code: 'HTTP_DESTINATION_DENIED' });
    }
    expect(hits).toEqual(before);
  });

  it('a name answering nothing fails as a lookup error, not as a connection anywhere', async () => {
    const before = { ...hits };
    const err = await get('127.0.0.2', `http://d.rebind.test:${port}/x`, rebinding([], [])).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENOTFOUND' });
    expect(hits).toEqual(before);
  });

  it('with the system resolver, a name for loopback (localhost) is refused before any byte is sent', async () => {
    const before = { ...hits };
    const err = await get('127.0.0.2', `http://localhost:${port}/x`).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'HTTP_DESTINATION_DENIED' });
    expect(hits).toEqual(before);
  });

  it('a keep-alive socket opened under a policy that allowed the name is not reused under one that does not', async () => {
    const before = { ...hits };
    const url = `http://localhost:${port}/x`;
    // Opens (and pools) a socket to localhost:PORT, which answers from 127.0.0.1.
    expect(JSON.parse((await get('localhost', url)).text)).toEqual({ server: '127.0.0.1' });
    expect(hits['127.0.0.1']).toBe(before['127.0.0.1'] + 1);
    const err = await get('127.0.0.2', url).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'HTTP_DESTINATION_DENIED' });
    expect(hits['127.0.0.1']).toBe(before['127.0.0.1'] + 1);
  });
});
