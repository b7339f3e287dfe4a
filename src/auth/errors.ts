/** Errors of identity and access; src/edge/problem.ts maps their codes to 401, 403 and 429. */
import { SmartSpecError } from '../errors.js';

/** No usable credentials: missing, malformed, unknown or revoked key. */
export class UnauthenticatedError extends SmartSpecError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}

/** A valid key without the scope the request needs. */
export class ForbiddenError extends SmartSpecError {
  constructor(scope: string, message: string) {
    super('FORBIDDEN', message, { details: { requiredScope: scope } });
  }

  static forRoute(scope: string, method: string, path: string): ForbiddenError {
    return new ForbiddenError(scope, `this API key lacks the '${scope}' scope that ${method} ${path} requires`);
  }
}

/** The tenant already runs as many executions as it may. */
export class TenantLimitError extends SmartSpecError {
  constructor(tenant: string, limit: number) {
    super('TENANT_LIMIT_REACHED', `tenant '${tenant}' already has ${limit} executions pending or running, its limit (SMARTSPEC_TENANT_MAX_RUNNING); retry when some have finished`, {
      retryable: true,
      details: { tenant, limit },
    });
  }
}
