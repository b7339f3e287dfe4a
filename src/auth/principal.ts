/**
 * Tenants, scopes and the principals the system itself stands for. A
 * principal is who caused a record (machines/events.ts): an API key, or one of
 * the fixed local identities below when no key was involved.
 */
import { userInfo } from 'node:os';
import { z } from 'zod';
import type { Principal } from '../../machines/events.js';

export type { Principal };

/** The tenant of everything done without a key (open loopback mode, the CLI, old records). */
export const DEFAULT_TENANT = 'default';

/** Tenant ids become KV key tokens: keep them short and plain. */
export const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export const SCOPES = ['read', 'write', 'admin', 'llm'] as const;
export type Scope = (typeof SCOPES)[number];

/** HTTP without a key while no key exists (open mode, loopback only unless --insecure). */
export const ANONYMOUS: Principal = { tenant: DEFAULT_TENANT, keyId: 'anonymous' };
/** A command published on NATS without a principal: NATS access is trusted (README, "Security"). */
export const NATS_PRINCIPAL: Principal = { tenant: DEFAULT_TENANT, keyId: 'nats' };

/** The command line acts as the OS user on the default tenant: it talks to NATS directly. */
export function cliPrincipal(): Principal {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers)
  }
  return { tenant: DEFAULT_TENANT, keyId: `cli:${user}` };
}

/** The engine continuing an execution by itself (recovery after a crash) acts for its tenant. */
export const systemPrincipal = (tenant: string): Principal => ({ tenant, keyId: 'system' });

export const principalSchema = z.strictObject({ tenant: z.string().regex(TENANT_ID, 'is not a tenant id'), keyId: z.string().min(1).max(200) });

/** What the request's credentials allow. `admin` implies every other scope. */
export interface Caller {
  principal: Principal;
  scopes: ReadonlySet<Scope>;
}

export function hasScope(caller: Caller, scope: Scope): boolean {
  return caller.scopes.has(scope) || caller.scopes.has('admin');
}

/** An admin sees every tenant's resources; everyone else only their own tenant's. */
export function canSeeTenant(caller: Caller, tenant: string): boolean {
  return caller.principal.tenant === tenant || caller.scopes.has('admin');
}

/** Parse `read,write` into scopes, naming the unknown one. */
export function parseScopes(text: string): Scope[] {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = parts.filter((p) => !(SCOPES as readonly string[]).includes(p));
  if (bad.length) throw new Error(`unknown scope '${bad[0]}'; scopes are ${SCOPES.join(', ')}`);
  if (parts.length === 0) throw new Error(`give at least one scope of ${SCOPES.join(', ')}`);
  return [...new Set(parts)] as Scope[];
}
