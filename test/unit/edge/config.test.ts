import { describe, expect, it } from 'vitest';
import { ConfigError, loadEdgeConfig } from '../../../src/edge/config.js';

describe('loadEdgeConfig', () => {
  it('has the documented defaults', () => {
    expect(loadEdgeConfig({})).toEqual({
      port: 3000,
      natsUrl: undefined,
      corsOrigins: [],
      rateLimitMax: 60,
      rateLimitWindowMs: 60_000,
      maxBodyBytes: 10_485_760,
      redisUrl: undefined,
      trustProxy: false,
      logLevel: 'info',
    });
  });

  it('reads every variable; empty strings count as unset', () => {
    const c = loadEdgeConfig({
      PORT: '8080',
      NATS_URL: 'nats://127.0.0.1:4222',
      CORS_ORIGINS: 'https://a.example.com, http://localhost:5173/ ,',
      RATE_LIMIT_MAX: '5',
      RATE_LIMIT_WINDOW_MS: '1000',
      MAX_BODY_BYTES: '2048',
      REDIS_URL: 'redis://127.0.0.1:6379/2',
      TRUST_PROXY: 'TRUE',
      LOG_LEVEL: 'debug',
    });
    expect(c).toEqual({
      port: 8080,
      natsUrl: 'nats://127.0.0.1:4222',
      corsOrigins: ['https://a.example.com', 'http://localhost:5173'],
      rateLimitMax: 5,
      rateLimitWindowMs: 1000,
      maxBodyBytes: 2048,
      redisUrl: 'redis://127.0.0.1:6379/2',
      trustProxy: true,
      logLevel: 'debug',
    });
    expect(loadEdgeConfig({ PORT: '', TRUST_PROXY: ' ' }).port).toBe(3000);
    expect(loadEdgeConfig({ CORS_ORIGINS: '*' }).corsOrigins).toEqual(['*']);
    expect(loadEdgeConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['RATE_LIMIT_MAX', '0'],
    ['RATE_LIMIT_WINDOW_MS', '-5'],
    ['MAX_BODY_BYTES', '10mb'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['TRUST_PROXY', 'maybe'],
    ['LOG_LEVEL', 'verbose'],
    ['CORS_ORIGINS', 'https://a.example.com/path'],
    ['CORS_ORIGINS', 'not a url'],
  ])('rejects %s=%s with an error naming the variable', (name, value) => {
    let caught: unknown;
    try {
      loadEdgeConfig({ [name]: value });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const e = caught as ConfigError;
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toMatch(new RegExp(`^invalid environment: ${name}: `));
  });

  it('reports every bad variable at once', () => {
    expect(() => loadEdgeConfig({ PORT: 'x', LOG_LEVEL: 'loud' })).toThrow(/PORT: .*; LOG_LEVEL: /);
  });
});
