/**
 * The HTTP API's shapes, in one module: the routes validate requests with
 * these schemas and the OpenAPI document (openapi.ts) is generated from the
 * same ones, so the two cannot drift apart. Response schemas describe what
 * the routes answer; the typed client (src/client) takes its types from here.
 * `.meta({ id })` names a schema as an OpenAPI component.
 */
import { z } from 'zod';
import { STATUSES } from '../../machines/phases.js';
import { SCOPES, TENANT_ID } from '../auth/principal.js';
import { EXECUTION_ID } from '../nats/names.js';

const WORKFLOW_ID = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export const executionStatusSchema = z.enum(STATUSES).meta({ id: 'ExecutionStatus' });
export const budgetRequestSchema = z.strictObject({ maxTokens: z.number().int().min(1) });
const timestamp = z.string().meta({ format: 'date-time' });

// ── requests ────────────────────────────────────────────────────────────────

export const tenantQuerySchema = z.string().regex(TENANT_ID, 'is not a tenant id');
export const executionIdParams = z.object({ id: z.string().regex(EXECUTION_ID, 'is not an execution id') });
export const workflowIdParams = z.object({ id: z.string().regex(WORKFLOW_ID, 'is not a workflow id') });
export const signalParams = executionIdParams.extend({ name: z.string().min(1) });
export const keyIdParams = z.object({ keyId: z.string() });

export const startExecutionBody = z
  .strictObject({
    workflowId: z.string().regex(WORKFLOW_ID, 'is not a workflow id').optional().meta({ description: 'a registered workflow (give this or `definition`)' }),
    version: z.number().int().min(1).optional().meta({ description: "the registered workflow's version (default: the latest)" }),
    definition: z.record(z.string(), z.unknown()).optional().meta({ description: 'an unregistered definition (see /schemas/definition.json)' }),
    input: z.unknown().optional(),
    budget: budgetRequestSchema.optional(),
    executionId: z.string().regex(EXECUTION_ID, 'must be 1-128 letters, digits, _ or -').optional(),
  })
  .refine((b) => (b.workflowId === undefined) !== (b.definition === undefined), { message: 'give exactly one of workflowId or definition', path: ['workflowId'] })
  .meta({ id: 'StartExecution' });

export const resumeExecutionBody = z
  .strictObject({
    checkpointId: z.string().min(1).optional().meta({ description: 'resume from this checkpoint (GET /executions/{id}/checkpoints)' }),
    fromStep: z.string().min(1).optional().meta({ description: 'run again from this step' }),
    steps: z.unknown().optional().meta({ description: 'a definition document whose steps (and parallel groups) replace the recorded ones' }),
    budget: budgetRequestSchema.optional(),
  })
  .meta({ id: 'ResumeExecution' });

export const cancelExecutionBody = z.strictObject({ reason: z.string().max(1000).optional() }).meta({ id: 'CancelExecution' });

/** Any JSON value: the signal's payload becomes the waiting step's output. */
export const signalBody = z.unknown().meta({ description: "any JSON value: the waiting step's output" });

export const listExecutionsQuery = z.object({
  status: executionStatusSchema.optional(),
  workflowId: z.string().optional(),
  tenant: tenantQuerySchema.optional().meta({ description: "another tenant's (admin only)" }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const fromQuery = z.object({ from: z.coerce.number().int().min(0).default(0).meta({ description: 'the first sequence number to return' }) });

export const listWorkflowsQuery = z.object({ tenant: tenantQuerySchema.optional() });
export const getWorkflowQuery = z.object({ version: z.coerce.number().int().min(1).optional(), tenant: tenantQuerySchema.optional() });

export const createKeyBody = z
  .strictObject({
    tenant: z.string().regex(TENANT_ID, 'must be 1-64 lowercase letters, digits, _ or -, starting with a letter or digit'),
    scopes: z.array(z.enum(SCOPES)).min(1),
    name: z.string().min(1).max(200).optional(),
  })
  .meta({ id: 'CreateKey' });
export const listKeysQuery = z.object({ tenant: z.string().optional() });

// ── responses ───────────────────────────────────────────────────────────────

/** RFC 9457 problem details, with our stable `code` and, for 422s, every field at fault. */
export const problemSchema = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    code: z.string().meta({ description: 'stable error code, e.g. EXECUTION_NOT_FOUND' }),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem' });

export const usageSchema = z.object({ promptTokens: z.number(), completionTokens: z.number(), totalTokens: z.number() }).meta({ id: 'Usage' });

export const startedExecutionSchema = z
  .object({ executionId: z.string(), status: executionStatusSchema, workflowId: z.string() })
  .meta({ id: 'StartedExecution' });

export const stepSummarySchema = z
  .looseObject({
    phase: z.enum(['pending', 'running', 'waiting', 'backoff', 'done', 'failed']),
    attempts: z.number().int().optional(),
    output: z.unknown().optional(),
    error: z.unknown().optional(),
    wakeAt: timestamp.optional().meta({ description: "a sleeping step's wake time" }),
    deadline: timestamp.optional().meta({ description: "when a waiting signal step times out" }),
    child: z.string().optional().meta({ description: "a workflow step's child execution" }),
    items: z.object({ count: z.number().int(), settled: z.number().int(), running: z.number().int(), failed: z.number().int() }).optional().meta({ description: 'a map under way: its items in numbers (each item is a child execution)' }),
  })
  .meta({ id: 'StepSummary' });

export const executionSchema = z
  .looseObject({
    executionId: z.string(),
    workflowId: z.string(),
    status: executionStatusSchema,
    state: z.unknown().optional().meta({ description: "the machine's state value" }),
    steps: z.record(z.string(), stepSummarySchema).optional(),
    output: z.unknown().optional(),
    error: z.unknown().optional(),
    usage: usageSchema.optional(),
    budget: budgetRequestSchema.optional(),
    createdAt: timestamp.optional().meta({ description: 'only while it is submitted and not yet started' }),
    startedAt: timestamp.optional(),
    updatedAt: timestamp.optional(),
    endedAt: timestamp.optional(),
    events: z.number().int().optional().meta({ description: 'records in its log' }),
    lastSeq: z.number().int().optional(),
    parent: z.object({ executionId: z.string(), stepId: z.string(), attempt: z.number().int(), index: z.number().int().optional() }).optional().meta({ description: 'a child execution: the parent step it reports to' }),
  })
  .meta({ id: 'Execution' });

export const executionEntrySchema = z
  .looseObject({ executionId: z.string(), workflowId: z.string(), status: executionStatusSchema, createdAt: timestamp, updatedAt: timestamp, tenant: z.string().optional() })
  .meta({ id: 'ExecutionEntry' });
export const executionListSchema = z.object({ executions: z.array(executionEntrySchema) }).meta({ id: 'ExecutionList' });

/** One record of the log, with its sequence number; `type` says which (ExecutionStarted, StepCompleted, ...). */
export const eventSchema = z.looseObject({ seq: z.number().int(), type: z.string(), at: timestamp.optional() }).meta({ id: 'Event' });
export const eventListSchema = z.object({ executionId: z.string(), events: z.array(eventSchema) }).meta({ id: 'EventList' });

export const checkpointListSchema = z
  .object({ executionId: z.string(), checkpoints: z.array(z.looseObject({ id: z.string(), seq: z.number().int(), type: z.string() })) })
  .meta({ id: 'CheckpointList' });

export const resumedSchema = z.object({
  executionId: z.string(),
  status: executionStatusSchema,
  lastSeq: z.number().int().meta({ description: "the log's last record when the resume was accepted: the resumed run's records come after it" }),
});
export const cancellingSchema = z.object({ executionId: z.string(), cancelling: z.literal(true) });
export const signalledSchema = z.object({ executionId: z.string(), signal: z.string(), stepId: z.string() });

/** A disabled workflow starts nothing (triggers, schedules, submissions) until it is enabled again. */
const disabledFields = {
  disabled: z.boolean().meta({ description: 'nothing starts it (triggers, schedules, submissions) until it is enabled' }),
  disabledAt: timestamp.optional(),
};
export const storedWorkflowSchema = z
  .object({ id: z.string(), version: z.number().int(), createdAt: timestamp, definition: z.record(z.string(), z.unknown()), ...disabledFields })
  .meta({ id: 'StoredWorkflow' });
export const workflowListSchema = z
  .object({ workflows: z.array(z.object({ id: z.string(), version: z.number().int(), createdAt: timestamp, steps: z.number().int(), ...disabledFields })) })
  .meta({ id: 'WorkflowList' });

export const apiKeySchema = z
  .object({ keyId: z.string(), tenant: z.string(), scopes: z.array(z.enum(SCOPES)), name: z.string().optional(), createdAt: timestamp, revokedAt: timestamp.optional() })
  .meta({ id: 'ApiKey' });
export const createdKeySchema = apiKeySchema.extend({ key: z.string().meta({ description: 'the secret, shown this once' }) });

export type StartExecutionRequest = z.input<typeof startExecutionBody>;
export type ResumeExecutionRequest = z.input<typeof resumeExecutionBody>;
/** What a client sends (the query is text; the edge coerces `limit`). */
export type ListExecutionsQuery = Partial<z.output<typeof listExecutionsQuery>>;
export type Problem = z.infer<typeof problemSchema>;
export type StartedExecution = z.infer<typeof startedExecutionSchema>;
export type Execution = z.infer<typeof executionSchema>;
export type ExecutionEntry = z.infer<typeof executionEntrySchema>;
export type ExecutionEvent = z.infer<typeof eventSchema>;
export type Checkpoint = z.infer<typeof checkpointListSchema>['checkpoints'][number];
export type StoredWorkflow = z.infer<typeof storedWorkflowSchema>;
export type Resumed = z.infer<typeof resumedSchema>;
export type WorkflowListEntry = z.infer<typeof workflowListSchema>['workflows'][number];
export type ExecutionStatus = z.infer<typeof executionStatusSchema>;
