/**
 * Identity and access settings from the environment, and the rule for the
 * address the edge may bind. Safe by default: with no API key, the edge
 * listens on loopback only; anything else needs an explicit --insecure.
 */
import { z } from 'zod';
import { ConfigError } from '../edge/config.js';

export interface AuthConfig {
  /** SMARTSPEC_AUTH: 'auto' (a key is required once any exists) or 'required' (always). */
  mode: 'auto' | 'required';
  /** SMARTSPEC_INSECURE / --insecure: allow a non-loopback address without keys. */
  insecure: boolean;
  /** SMARTSPEC_METRICS_TOKEN: a bearer token for GET /metrics only (a scraper's). */
  metricsToken?: string;
  /** HOST: the address the edge binds (default: all interfaces with keys, 127.0.0.1 without). */
  host?: string;
  /** SMARTSPEC_TENANT_MAX_RUNNING: PENDING + RUNNING executions per tenant (0: no cap). */
  tenantMaxRunning: number;
}

const schema = z.object({
  SMARTSPEC_AUTH: z.enum(['auto', 'required']).default('auto'),
  SMARTSPEC_INSECURE: z.enum(['true', 'false', '1', '0']).default('false').transform((v) => v === 'true' || v === '1'),
  SMARTSPEC_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  HOST: z.string().min(1).optional(),
  SMARTSPEC_TENANT_MAX_RUNNING: z.string().regex(/^\d+$/, 'expected a whole number (0: no cap)').transform(Number).default(10_000),
});

export function loadAuthConfig(env: Record<string, string | undefined> = process.env): AuthConfig {
  const present = Object.fromEntries(Object.keys(schema.shape).map((k) => [k, env[k]?.trim()] as const).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? '?'), message: i.message })));
  const e = parsed.data;
  return { mode: e.SMARTSPEC_AUTH, insecure: e.SMARTSPEC_INSECURE, metricsToken: e.SMARTSPEC_METRICS_TOKEN, host: e.HOST, tenantMaxRunning: e.SMARTSPEC_TENANT_MAX_RUNNING };
}

export const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * Where the edge may listen. `warning`: say it at start (open to the network
 * without keys); `note`: say it too (why loopback only).
 */
export function bindAddress(config: AuthConfig, authOn: boolean): { host?: string; note?: string; warning?: string } {
  if (authOn) return { host: config.host };
  if (config.host && isLoopback(config.host)) return { host: config.host, note: 'no API key exists: the edge is open, to this machine only' };
  if (config.insecure) {
    return { host: config.host, warning: `INSECURE: no API key exists and the edge listens on ${config.host ?? 'every interface'} without authentication; anyone who can reach it can run workflows` };
  }
  if (config.host) {
    throw new ConfigError([{ variable: 'HOST', message: `'${config.host}' is not a loopback address and no API key exists: create one (smartspec keys create --tenant T --scopes read,write), or accept an open edge with --insecure (SMARTSPEC_INSECURE=true)` }]);
  }
  return { host: '127.0.0.1', note: 'no API key exists: the edge is open and listens on 127.0.0.1 only (create a key with smartspec keys create, or pass --insecure to listen elsewhere)' };
}
