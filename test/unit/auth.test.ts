/** The pure parts of identity and access: the scope table, the bind rule, settings, scopes. */
import { describe, expect, it } from 'vitest';
import { bindAddress, loadAuthConfig } from '../../src/auth/config.js';
import { canSeeTenant, hasScope, parseScopes, type Caller } from '../../src/auth/principal.js';
import { requiredScope } from '../../src/edge/middleware/authentication.js';

describe('requiredScope', () => {
  it('maps every route of the contract to its scope', () => {
    expect(requiredScope('GET', '/executions')).toBe('read');
    expect(requiredScope('GET', '/executions/x/events/stream')).toBe('read');
    expect(requiredScope('HEAD', '/workflows')).toBe('read');
    for (const path of ['/executions', '/executions/x/resume', '/executions/x/cancel', '/executions/x/signals/s', '/workflows']) expect(requiredScope('POST', path)).toBe('write');
    expect(requiredScope('POST', '/v1/chat/completions')).toBe('llm');
    expect(requiredScope('GET', '/v1/models')).toBe('llm');
    expect(requiredScope('GET', '/metrics')).toBe('admin');
    expect(requiredScope('GET', '/keys')).toBe('admin');
    expect(requiredScope('DELETE', '/keys/abc')).toBe('admin');
    expect(requiredScope('GET', '/v1x')).toBe('read'); // not the proxy
  });
});

describe('scopes and tenants', () => {
  const caller = (tenant: string, ...scopes: string[]): Caller => ({ principal: { tenant, keyId: 'k' }, scopes: new Set(scopes) as Caller['scopes'] });
  it('admin implies every scope and sees every tenant; others only their own', () => {
    expect(hasScope(caller('a', 'admin'), 'llm')).toBe(true);
    expect(hasScope(caller('a', 'read'), 'write')).toBe(false);
    expect(canSeeTenant(caller('a', 'read', 'write'), 'b')).toBe(false);
    expect(canSeeTenant(caller('a', 'read'), 'a')).toBe(true);
    expect(canSeeTenant(caller('ops', 'admin'), 'b')).toBe(true);
  });
  it('parses scope lists and names an unknown scope', () => {
    expect(parseScopes('read, write,read')).toEqual(['read', 'write']);
    expect(() => parseScopes('read,root')).toThrow("unknown scope 'root'");
    expect(() => parseScopes('')).toThrow(/at least one scope/);
  });
});

describe('bindAddress', () => {
  const config = (env: Record<string, string> = {}) => loadAuthConfig(env);
  it('without keys: 127.0.0.1 by default, a loopback HOST as given, anything else only with --insecure (and a warning)', () => {
    expect(bindAddress(config(), false)).toMatchObject({ host: '127.0.0.1', note: expect.stringContaining('127.0.0.1 only') });
    expect(bindAddress(config({ HOST: '::1' }), false).host).toBe('::1');
    expect(() => bindAddress(config({ HOST: '0.0.0.0' }), false)).toThrow(/HOST: '0\.0\.0\.0' is not a loopback address.*--insecure/);
    const insecure = bindAddress(config({ HOST: '0.0.0.0', SMARTSPEC_INSECURE: 'true' }), false);
    expect(insecure.host).toBe('0.0.0.0');
    expect(insecure.warning).toMatch(/^INSECURE/);
    expect(bindAddress(config({ SMARTSPEC_INSECURE: '1' }), false)).toMatchObject({ host: undefined, warning: expect.stringContaining('every interface') });
  });
  it('with keys: HOST, or every interface', () => {
    expect(bindAddress(config(), true)).toEqual({ host: undefined });
    expect(bindAddress(config({ HOST: '10.0.0.5' }), true)).toEqual({ host: '10.0.0.5' });
  });
});

describe('loadAuthConfig', () => {
  it('has safe defaults and names a bad variable', () => {
    expect(loadAuthConfig({})).toEqual({ mode: 'auto', insecure: false, metricsToken: undefined, host: undefined, tenantMaxRunning: 10_000 });
    expect(() => loadAuthConfig({ SMARTSPEC_AUTH: 'off' })).toThrow(/SMARTSPEC_AUTH/);
    expect(() => loadAuthConfig({ SMARTSPEC_METRICS_TOKEN: 'short' })).toThrow(/SMARTSPEC_METRICS_TOKEN: must be at least 16/);
    expect(() => loadAuthConfig({ SMARTSPEC_TENANT_MAX_RUNNING: '-1' })).toThrow(/SMARTSPEC_TENANT_MAX_RUNNING/);
  });
});
