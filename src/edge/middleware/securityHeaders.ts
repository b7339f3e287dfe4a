/**
 * Security headers on every response. Helmet sets them before `next()`, so
 * they are already on the response when an inner layer answers 413/415/429 or
 * throws; the error handler (outside) keeps headers it did not set.
 *
 * Helmet is narrowed to exactly the contracted set. Helmet 8 sends
 * `X-XSS-Protection: 0`; the contract asks for `1; mode=block`, set after it.
 */
import type { Middleware } from 'koa';
import helmet from 'koa-helmet';

export const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'X-XSS-Protection': '1; mode=block',
  'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  'Content-Security-Policy': "default-src 'self'",
} as const;

export function securityHeaders(): Middleware {
  const base = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'self'"] } },
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true, preload: false },
    xContentTypeOptions: true,
    xFrameOptions: { action: 'deny' },
    xXssProtection: false,
    // Everything else helmet would add is outside the contract.
    crossOriginEmbedderPolicy: false,
    crossOriginOpenerPolicy: false,
    crossOriginResourcePolicy: false,
    originAgentCluster: false,
    referrerPolicy: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xPoweredBy: false,
  });
  return async function securityHeaders(ctx, next) {
    await base(ctx, async () => {
      ctx.set('X-XSS-Protection', SECURITY_HEADERS['X-XSS-Protection']);
      await next();
    });
  };
}
