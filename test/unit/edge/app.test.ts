import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createEdgeApp, MIDDLEWARE_ORDER } from '../../../src/edge/app.js';
import { loadEdgeConfig } from '../../../src/edge/config.js';

describe('createEdgeApp', () => {
  it('composes the contracted stack, outermost first, before any route', () => {
    const app = createEdgeApp({ config: loadEdgeConfig({}), logger: pino({ level: 'silent' }) });
    const names = app.middleware.map((m) => m.name);
    expect(names.slice(0, MIDDLEWARE_ORDER.length)).toEqual([...MIDDLEWARE_ORDER]);
    expect(MIDDLEWARE_ORDER).toEqual(['errorHandling', 'requestLogging', 'securityHeaders', 'requestValidation', 'authentication', 'rateLimit', 'cors']);
  });

  it('trusts X-Forwarded-For only with TRUST_PROXY, and only its last hop', () => {
    const plain = createEdgeApp({ config: loadEdgeConfig({}), logger: pino({ level: 'silent' }) });
    const proxied = createEdgeApp({ config: loadEdgeConfig({ TRUST_PROXY: 'true' }), logger: pino({ level: 'silent' }) });
    expect([plain.proxy, proxied.proxy, proxied.maxIpsCount]).toEqual([false, true, 1]);
  });
});
