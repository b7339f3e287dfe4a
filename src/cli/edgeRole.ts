/**
 * What only the edge role needs (Koa and its middleware, the routes, the LLM
 * proxy, the key store), imported by service.ts when a process runs the edge:
 * a worker alone never loads it, which keeps it some 20 MiB smaller.
 */
export { createEdgeApp, startEdgeServer } from '../edge/index.js';
export { executionsRouter } from '../edge/routes/executions.js';
export { workflowsRouter } from '../edge/routes/workflows.js';
export { keysRouter } from '../edge/routes/keys.js';
export { schedulesRouter } from '../edge/routes/schedules.js';
export { contractsRouter } from '../edge/routes/contracts.js';
export { uiRouter } from '../edge/routes/ui.js';
export { createLlmProxyRouter, createLlmRouter } from '../llm/index.js';
export { KeyStore } from '../auth/keys.js';
export { IdempotencyStore } from '../registry/idempotency.js';
