/**
 * `smartspec-orchestrator`: the engine API, for embedding the orchestrator in
 * a Node process. Run the whole service (`startService`), or host executions
 * yourself (`Engine` on a NATS connection and its `EventLog`), and read them
 * back from the log. Definitions are checked with `validateDefinition`; their
 * JSON Schema and the API's OpenAPI document come from the same zod schemas.
 * The HTTP client is the separate entry `smartspec-orchestrator/client`.
 */
export { startService, type RunningService } from './cli/service.js';
export { Engine, type EngineOptions, type StartRequest, type ResumeRequest } from './worker/engine.js';
export type { ExecutionRunner, RunnerOutcome } from './worker/runner.js';
export { EventLog, type EventLogOptions } from './log/eventLog.js';
export type { StoredRecord, LogRecord } from './log/records.js';
export { loadExecution, summarize, listCheckpoints, type ExecutionSummary, type StepSummary, type Checkpoint } from './log/views.js';
export { connectNats } from './nats/connect.js';
export { startNatsServer, type NatsServer, type NatsServerOptions } from './nats/server.js';
export { defaultExecutors } from './steps/index.js';
export type { StepExecutor, StepExecutors, StepRun, StepResult } from './steps/types.js';
export { validateDefinition, parseDefinition, type Issue } from './definition/validate.js';
export { definitionSchema, stepSchema, STEP_TYPES, type Definition, type Step, type StepType, type RetryPolicy, type Budget } from '../machines/definition.js';
export { STATUSES, statusOf, type ExecutionStatus } from '../machines/index.js';
export { definitionJsonSchema, DEFINITION_SCHEMA_PATH, type JsonSchema } from './contracts/definitionSchema.js';
export { openApiDocument, OPENAPI_PATH, type OpenApiDocument } from './contracts/openapi.js';
export * from './errors.js';
