/**
 * The edge's configuration, read once from the environment and validated with
 * zod so a bad deployment fails at start with the variable's name, not later
 * with a confusing runtime error.
 */
import { z } from 'zod';
import { SmartSpecError } from '../errors.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface EdgeConfig {
  port: number;
  /** Unset: the composition root decides (e.g. the embedded nats-server). */
  natsUrl?: string;
  /** Allowed CORS origins; empty = no cross-origin access; ['*'] = any origin. */
  corsOrigins: string[];
  rateLimitMax: number;
  rateLimitWindowMs: number;
  maxBodyBytes: number;
  /** Unset: the rate-limit budget lives in process memory (one edge only). */
  redisUrl?: string;
  /** Behind a load balancer: the client IP is the last X-Forwarded-For entry. */
  trustProxy: boolean;
  logLevel: LogLevel;
}

export class ConfigError extends SmartSpecError {
  constructor(issues: { variable: string; message: string }[]) {
    super('INVALID_CONFIG', `invalid environment: ${issues.map((i) => `${i.variable}: ${i.message}`).join('; ')}`, {
      details: { issues },
    });
  }
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\d+$/, `expected an integer from ${min}`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const bool = z
  .string()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' }))
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

// An origin is scheme://host[:port] and nothing else; a path would never match the Origin header.
const origin = z.string().transform((value, ctx) => {
  if (value === '*') return value;
  try {
    const url = new URL(value);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/' && !url.search && !url.hash) return url.origin;
  } catch {
    /* reported below */
  }
  ctx.addIssue({ code: 'custom', message: `'${value}' is not an origin like https://app.example.com` });
  return z.NEVER;
});

const schema = z.object({
  PORT: int(0, 65535).default(3000),
  NATS_URL: z.string().optional(),
  CORS_ORIGINS: z
    .string()
    .transform((s) => s.split(',').map((o) => o.trim()).filter(Boolean))
    .pipe(z.array(origin))
    .default([]),
  RATE_LIMIT_MAX: int(1).default(60),
  RATE_LIMIT_WINDOW_MS: int(1).default(60_000),
  MAX_BODY_BYTES: int(1).default(10 * 1024 * 1024),
  REDIS_URL: z
    .string()
    .refine((u) => /^rediss?:\/\//.test(u), 'expected a redis:// or rediss:// URL')
    .optional(),
  TRUST_PROXY: bool.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Parse the environment (default: process.env). Empty strings count as unset. */
export function loadEdgeConfig(env: Record<string, string | undefined> = process.env): EdgeConfig {
  const present = Object.fromEntries(
    Object.keys(schema.shape)
      .map((k) => [k, env[k]?.trim()] as const)
      .filter(([, v]) => v !== undefined && v !== ''),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? '?'), message: i.message })),
    );
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    natsUrl: e.NATS_URL,
    corsOrigins: e.CORS_ORIGINS,
    rateLimitMax: e.RATE_LIMIT_MAX,
    rateLimitWindowMs: e.RATE_LIMIT_WINDOW_MS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    redisUrl: e.REDIS_URL,
    trustProxy: e.TRUST_PROXY,
    logLevel: e.LOG_LEVEL,
  };
}
