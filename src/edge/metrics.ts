/**
 * Prometheus metrics for the edge: prom-client's default process metrics and
 * an HTTP counter + latency histogram labelled by method, route pattern and
 * status. Route patterns (not raw paths) keep label cardinality bounded.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { CompletedRequest } from './middleware/requestLogging.js';

export const UNMATCHED_ROUTE = 'unmatched';

export interface HttpMetrics {
  registry: Registry;
  observe(request: CompletedRequest): void;
}

const LABELS = ['method', 'route', 'status'] as const;

/**
 * Register (once per registry: several apps may share one) and return the
 * observer the request-logging layer calls when a response completes.
 */
export function createHttpMetrics(registry: Registry = new Registry()): HttpMetrics {
  if (!registry.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics({ register: registry });
  const requests =
    (registry.getSingleMetric('http_requests_total') as Counter<(typeof LABELS)[number]> | undefined) ??
    new Counter({ name: 'http_requests_total', help: 'HTTP requests completed', labelNames: LABELS, registers: [registry] });
  const duration =
    (registry.getSingleMetric('http_request_duration_seconds') as Histogram<(typeof LABELS)[number]> | undefined) ??
    new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration until the response completed',
      labelNames: LABELS,
      registers: [registry],
    });
  return {
    registry,
    observe(r) {
      const labels = { method: r.method, route: r.route ?? UNMATCHED_ROUTE, status: String(r.status) };
      requests.inc(labels);
      duration.observe(labels, r.durationMs / 1000);
    },
  };
}
