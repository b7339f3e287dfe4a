/**
 * The OpenAPI 3.1 document of the HTTP API, generated (zod-openapi) from the
 * zod schemas the routes validate with (http.ts, the definition schema, the
 * LLM proxy's request schema). Paths are written as the router has them
 * (`/executions/:id`); `openApiPath` turns them into OpenAPI's `{id}` form,
 * and a test checks that every route of the edge is in the document.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { definitionSchema } from '../../machines/definition.js';
import { chatCompletionRequestSchema } from '../llm/proxy/requestSchema.js';
import { DEFINITION_SCHEMA_PATH } from './definitionSchema.js';
import * as http from './http.js';
import { createScheduleBody } from '../schedules/operations.js';
import { SCHEDULE_ID } from '../schedules/scheduleStore.js';

export const OPENAPI_PATH = '/openapi.json';
/** The API reference page, rendering the document. */
export const REFERENCE_PATH = '/docs';

type Method = 'get' | 'post' | 'delete';
type Operation = ZodOpenApiOperationObject;

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema } } });
const ok = (description: string, schema?: z.ZodType) => ({ description, ...(schema ? json(schema) : {}) });
const problem = { description: 'the request was refused: problem details (RFC 9457) naming what is wrong', content: { 'application/problem+json': { schema: http.problemSchema } } };
const withErrors = (responses: ZodOpenApiResponsesObject): ZodOpenApiResponsesObject => ({ ...responses, default: problem });
const definition = definitionSchema.meta({ id: 'Definition', description: `A workflow definition (also served alone at ${DEFINITION_SCHEMA_PATH})` });
const execution = { path: http.executionIdParams };
const schedule = { path: z.object({ id: z.string().regex(SCHEDULE_ID) }) };
const scheduleViewSchema = z.looseObject({ id: z.string(), workflowId: z.string(), catchup: z.string(), paused: z.boolean(), nextAt: z.string().nullable(), history: z.array(z.looseObject({ kind: z.string(), at: z.string() })).optional() }).meta({ id: 'Schedule' });

/** Every route of the edge: `[method, router path, operation]`. */
const ROUTES: [Method, string, Operation][] = [
  // ── workflows
  ['post', '/workflows', { tags: ['workflows'], operationId: 'registerWorkflow', summary: 'Register a definition (a new version when the id exists)', requestBody: json(definition), responses: withErrors({ 201: ok('registered', http.storedWorkflowSchema) }) }],
  ['get', '/workflows', { tags: ['workflows'], operationId: 'listWorkflows', summary: "The caller's tenant's workflows, latest versions", requestParams: { query: http.listWorkflowsQuery }, responses: withErrors({ 200: ok('the workflows', http.workflowListSchema) }) }],
  ['get', '/workflows/:id', { tags: ['workflows'], operationId: 'getWorkflow', summary: 'A registered definition (the latest version unless ?version=)', requestParams: { path: http.workflowIdParams, query: http.getWorkflowQuery }, responses: withErrors({ 200: ok('the workflow', http.storedWorkflowSchema) }) }],
  ['delete', '/workflows/:id', { tags: ['workflows'], operationId: 'deleteWorkflow', summary: 'Delete a workflow and all its versions: its triggers and schedules start nothing more; executions of it go on and stay readable', requestParams: { path: http.workflowIdParams }, responses: withErrors({ 204: ok('deleted') }) }],
  ['post', '/workflows/:id/disable', { tags: ['workflows'], operationId: 'disableWorkflow', summary: 'Disable: its triggers and schedules start nothing, submissions are refused (409); running executions go on', requestParams: { path: http.workflowIdParams }, responses: withErrors({ 200: ok('disabled', http.storedWorkflowSchema) }) }],
  ['post', '/workflows/:id/enable', { tags: ['workflows'], operationId: 'enableWorkflow', summary: 'Enable a disabled workflow again', requestParams: { path: http.workflowIdParams }, responses: withErrors({ 200: ok('enabled', http.storedWorkflowSchema) }) }],
  // ── executions
  ['post', '/executions', {
    tags: ['executions'], operationId: 'startExecution', summary: 'Start an execution of a registered workflow or of a definition',
    description: 'Answers 202 at once: the run goes on in a worker. An `Idempotency-Key` header makes a repeated submission return the first one.',
    requestParams: { header: z.object({ 'Idempotency-Key': z.string().optional() }) },
    requestBody: json(http.startExecutionBody),
    responses: withErrors({ 202: ok('accepted', http.startedExecutionSchema) }),
  }],
  ['get', '/executions', { tags: ['executions'], operationId: 'listExecutions', summary: 'Executions, newest first', requestParams: { query: http.listExecutionsQuery }, responses: withErrors({ 200: ok('the executions', http.executionListSchema) }) }],
  ['get', '/executions/:id', { tags: ['executions'], operationId: 'getExecution', summary: "An execution's status, steps, output, error and token usage", requestParams: execution, responses: withErrors({ 200: ok('the execution', http.executionSchema) }) }],
  ['get', '/executions/:id/events', { tags: ['executions'], operationId: 'listEvents', summary: "The execution's log (from ?from=seq)", requestParams: { ...execution, query: http.fromQuery }, responses: withErrors({ 200: ok('the records', http.eventListSchema) }) }],
  ['get', '/executions/:id/events/stream', {
    tags: ['executions'], operationId: 'streamEvents', summary: "The execution's log, live, as Server-Sent Events",
    description: 'Each record is an event named after its type, with `id:` its sequence number (so `Last-Event-ID` resumes) and `data:` the record as JSON; an `end` event follows the record that ends the execution.',
    requestParams: { ...execution, query: http.fromQuery, header: z.object({ 'Last-Event-ID': z.string().optional() }) },
    responses: withErrors({ 200: { description: 'the event stream', content: { 'text/event-stream': { schema: z.string() } } } }),
  }],
  ['get', '/executions/:id/checkpoints', { tags: ['executions'], operationId: 'listCheckpoints', summary: 'Where the execution can be resumed from', requestParams: execution, responses: withErrors({ 200: ok('the checkpoints', http.checkpointListSchema) }) }],
  ['post', '/executions/:id/resume', { tags: ['executions'], operationId: 'resumeExecution', summary: 'Resume from a checkpoint or step, optionally with corrected steps', requestParams: execution, requestBody: { required: false, ...json(http.resumeExecutionBody) }, responses: withErrors({ 202: ok('resuming', http.resumedSchema) }) }],
  ['post', '/executions/:id/cancel', { tags: ['executions'], operationId: 'cancelExecution', summary: 'Cancel a running or waiting execution', requestParams: execution, requestBody: { required: false, ...json(http.cancelExecutionBody) }, responses: withErrors({ 202: ok('cancelling', http.cancellingSchema) }) }],
  ['post', '/executions/:id/signals/:name', { tags: ['executions'], operationId: 'signalExecution', summary: 'Deliver a signal to the step waiting for it', requestParams: { path: http.signalParams }, requestBody: { required: false, ...json(http.signalBody) }, responses: withErrors({ 202: ok('delivered', http.signalledSchema) }) }],
  // ── schedules (docs/events.md)
  ['post', '/schedules', { tags: ['schedules'], operationId: 'createSchedule', summary: 'Schedule a workflow: cron in a time zone, or every interval', requestBody: json(createScheduleBody), responses: withErrors({ 201: ok('created', scheduleViewSchema) }) }],
  ['get', '/schedules', { tags: ['schedules'], operationId: 'listSchedules', summary: "The caller's tenant's schedules", responses: withErrors({ 200: ok('the schedules', z.object({ schedules: z.array(scheduleViewSchema) })) }) }],
  ['get', '/schedules/:id', { tags: ['schedules'], operationId: 'getSchedule', summary: 'A schedule with its recent firings (history, newest first)', requestParams: schedule, responses: withErrors({ 200: ok('the schedule', scheduleViewSchema) }) }],
  ['post', '/schedules/:id/pause', { tags: ['schedules'], operationId: 'pauseSchedule', summary: 'Pause: no firing starts until resumed', requestParams: schedule, responses: withErrors({ 200: ok('paused', scheduleViewSchema) }) }],
  ['post', '/schedules/:id/resume', { tags: ['schedules'], operationId: 'resumeSchedule', summary: 'Resume: the next firing after now starts (none missed while paused)', requestParams: schedule, responses: withErrors({ 200: ok('resumed', scheduleViewSchema) }) }],
  ['post', '/schedules/:id/trigger', { tags: ['schedules'], operationId: 'triggerSchedule', summary: 'Start one execution now', requestParams: schedule, responses: withErrors({ 202: ok('started', z.object({ scheduleId: z.string(), executionId: z.string() })) }) }],
  ['delete', '/schedules/:id', { tags: ['schedules'], operationId: 'deleteSchedule', summary: 'Delete a schedule', requestParams: schedule, responses: withErrors({ 204: ok('deleted') }) }],
  // ── API keys (admin)
  ['post', '/keys', { tags: ['keys'], operationId: 'createKey', summary: 'Create an API key (the secret is in this answer only)', requestBody: json(http.createKeyBody), responses: withErrors({ 201: ok('created', http.createdKeySchema) }) }],
  ['get', '/keys', { tags: ['keys'], operationId: 'listKeys', summary: 'API keys, without their secrets', requestParams: { query: http.listKeysQuery }, responses: withErrors({ 200: ok('the keys', z.object({ keys: z.array(http.apiKeySchema) })) }) }],
  ['delete', '/keys/:keyId', { tags: ['keys'], operationId: 'revokeKey', summary: 'Revoke an API key', requestParams: { path: http.keyIdParams }, responses: withErrors({ 200: ok('revoked', http.apiKeySchema) }) }],
  // ── the OpenAI-compatible proxy (errors in OpenAI's shape, not problem+json)
  ['get', '/v1/models', { tags: ['llm'], operationId: 'listModels', summary: 'Models the proxy can route to (OpenAI format)', responses: { 200: ok('the models') } }],
  ['get', '/v1/models/:id', { tags: ['llm'], operationId: 'getModel', summary: 'One model (OpenAI format)', requestParams: { path: z.object({ id: z.string() }) }, responses: { 200: ok('the model'), 404: ok('no such model') } }],
  ['get', '/v1/models/:provider/:model', { tags: ['llm'], operationId: 'getProviderModel', summary: 'One model named `provider/model`, slash unencoded', requestParams: { path: z.object({ provider: z.string(), model: z.string() }) }, responses: { 200: ok('the model'), 404: ok('no such model') } }],
  ['post', '/v1/chat/completions', {
    tags: ['llm'], operationId: 'createChatCompletion', summary: 'Chat completion (OpenAI format; `stream: true` answers Server-Sent Events)',
    requestBody: json(chatCompletionRequestSchema),
    responses: { 200: { description: 'the completion, or its chunks as Server-Sent Events', content: { 'application/json': { schema: z.looseObject({}) }, 'text/event-stream': { schema: z.string() } } }, 400: ok('refused (OpenAI error format)') },
  }],
  // ── operations
  ['get', '/healthz', { tags: ['operations'], operationId: 'health', summary: 'Liveness', security: [], responses: { 200: ok('alive', z.object({ status: z.literal('ok') })) } }],
  ['get', '/readyz', { tags: ['operations'], operationId: 'ready', summary: 'Readiness (NATS reachable)', security: [], responses: withErrors({ 200: ok('ready', z.object({ status: z.literal('ready') })) }) }],
  ['get', '/metrics', { tags: ['operations'], operationId: 'metrics', summary: 'Prometheus metrics (admin, or the metrics token)', responses: withErrors({ 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } }) }],
  // ── contracts
  ['get', OPENAPI_PATH, { tags: ['contracts'], operationId: 'openApi', summary: 'This document', security: [], responses: { 200: ok('OpenAPI 3.1', z.looseObject({})) } }],
  ['get', DEFINITION_SCHEMA_PATH, { tags: ['contracts'], operationId: 'definitionSchema', summary: 'The JSON Schema of workflow definitions', security: [], responses: { 200: { description: 'JSON Schema (draft 2020-12)', content: { 'application/schema+json': { schema: z.looseObject({}) } } } } }],
  ['get', REFERENCE_PATH, { tags: ['contracts'], operationId: 'reference', summary: 'The API reference page (HTML)', security: [], responses: { 200: { description: 'the page', content: { 'text/html': { schema: z.string() } } } } }],
  ['get', '/ui{/*path}', { tags: ['contracts'], operationId: 'explorer', summary: 'The web explorer (docs/explorer.md): its page and assets; any other path under /ui/ is the page', security: [], requestParams: { path: z.object({ path: z.string() }) }, responses: { 200: { description: 'the page or an asset', content: { 'text/html': { schema: z.string() } } }, 404: { description: 'not built (npm run build:web)' } } }],
  ['get', `${REFERENCE_PATH}/:file`, { tags: ['contracts'], operationId: 'referenceAsset', summary: "The reference page's script and stylesheet", security: [], requestParams: { path: z.object({ file: z.string() }) }, responses: withErrors({ 200: { description: 'the file', content: { 'text/javascript': { schema: z.string() }, 'text/css': { schema: z.string() } } } }) }],
];

/** `/executions/:id` → `/executions/{id}`. */
export function openApiPath(routerPath: string): string {
  // `{/*path}` (an optional rest of the path, as the explorer's route has it) is documented as one parameter.
  return routerPath.replace(/\{\/\*([A-Za-z0-9_]+)\}/g, '/{$1}').replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

export type OpenApiDocument = ReturnType<typeof createDocument>;

let cached: OpenApiDocument | undefined;

/** The package's version: its package.json is two folders up from the sources, three from dist/src. */
function packageVersion(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'smartspec-orchestrator' && pkg.version) return pkg.version;
    } catch {
      // not there: the other layout
    }
  }
  return '0.0.0';
}

/** The document (built once per process; do not modify it). */
export function openApiDocument(): OpenApiDocument {
  if (cached) return cached;
  const paths: ZodOpenApiPathsObject = {};
  for (const [method, path, operation] of ROUTES) paths[openApiPath(path)] = { ...paths[openApiPath(path)], [method]: operation };
  cached = createDocument({
    openapi: '3.1.0',
    info: {
      title: 'SmartSpec Orchestrator',
      version: packageVersion(),
      description: 'Durable workflows over NATS JetStream. Errors are application/problem+json (RFC 9457) with a stable `code`. The typed client is `smartspec-orchestrator/client`.',
    },
    tags: [
      { name: 'workflows', description: 'The definition registry' },
      { name: 'executions', description: 'Start, read, follow, resume, cancel and signal executions' },
      { name: 'schedules', description: 'Workflows started on a cron or an interval' },
      { name: 'keys', description: 'API keys (admin scope)' },
      { name: 'llm', description: 'The OpenAI-compatible proxy (llm scope)' },
      { name: 'operations', description: 'Probes and metrics' },
      { name: 'contracts', description: 'This document, the definition schema and the reference page' },
    ],
    // Open until the first API key exists (or SMARTSPEC_AUTH=required); a Bearer key after that.
    security: [{}, { apiKey: [] }],
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'an API key: `Authorization: Bearer ssk_…`' } } },
    paths,
  });
  return cached;
}
