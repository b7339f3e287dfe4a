/**
 * The workflow definition format (ARCHITECTURE.md, "Workflow definition" and
 * "Definitions, second edition"). zod checks the shape of each field;
 * cross-field rules (ids, groups, needs, references) are in src/definition.
 * Container steps (switch, parallel, map, loop, graph) hold blocks: lists of
 * steps run in order, which may be containers again, up to MAX_NESTING deep.
 */
import { z } from 'zod';

// Ids become object keys (state nodes, outputs): names that plain objects already have are refused.
const RESERVED = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);
const stepId = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'must start with a letter or _ and contain only letters, digits, _ and -')
  .refine((id) => !RESERVED.has(id), { message: 'is a reserved name (a property every JavaScript object has)' });

export const retrySchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(1_000_000).default(3),
  initialDelayMs: z.number().int().min(0).max(3_600_000).default(1000),
  backoffRate: z.number().min(1).max(10).default(2),
  maxDelayMs: z.number().int().min(0).max(86_400_000).default(60_000),
});

/**
 * At most `limit` holders of a key run at once, across all workers (src/concurrency). `key` is a
 * template or expression (`{{input.tenant}}`), read once by the worker and recorded.
 */
export const MAX_CONCURRENCY_KEYS = 4;
export const concurrencySchema = z
  .array(z.strictObject({ key: z.string().min(1).max(512), limit: z.number().int().min(1).max(100_000) }))
  .min(1, 'concurrency needs at least one { key, limit }')
  .max(MAX_CONCURRENCY_KEYS, `at most ${MAX_CONCURRENCY_KEYS} concurrency keys`);
/** Starts per minute and LLM tokens per minute (from the usage the log records) per key, across all workers. */
export const rateLimitSchema = z
  .strictObject({
    key: z.string().min(1).max(512),
    perMinute: z.number().int().min(1).max(600_000).optional(),
    tokensPerMinute: z.number().int().min(1).optional(),
  })
  .refine((r) => r.perMinute !== undefined || r.tokensPerMinute !== undefined, { message: 'a rateLimit needs perMinute, tokensPerMinute or both' });

const common = {
  id: stepId,
  concurrency: concurrencySchema.optional(),
  rateLimit: rateLimitSchema.optional(),
  retry: retrySchema.optional(),
  timeoutMs: z.number().int().min(1).max(86_400_000).optional(),
  /** A template; the step is skipped when it resolves to a false value. */
  when: z.string().optional(),
  onError: z.enum(['fail', 'continue']).default('fail'),
  /** Inside a graph only: ids of the steps of that graph this one waits for. */
  needs: z.array(stepId).optional(),
};

/** A NATS subject a trigger or a wait listens on: tokens, `*` for one token, a final `>` for the rest. */
const SUBJECT = /^(?:[^\s.*>]+|\*)(?:\.(?:[^\s.*>]+|\*))*(?:\.>)?$/;
const subject = z.string().regex(SUBJECT, 'is not a NATS subject (tokens separated by dots; * for one token, a final > for the rest)');

export const transformStepSchema = z.strictObject({ ...common, type: z.literal('transform'), value: z.unknown() });

export const httpStepSchema = z.strictObject({
  ...common,
  type: z.literal('http'),
  request: z.strictObject({
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']).default('GET'),
    url: z.string().min(1),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.unknown().optional(),
  }),
});

/** The longest sleep: 100 years (a wake time must stay a valid date). */
export const MAX_SLEEP_MS = 100 * 365 * 86_400_000;
/** A string that is exactly one `{{…}}` template. */
const wholeTemplate = z.string().regex(/^\{\{[^{}]*\}\}$/, 'must be a number of milliseconds or a single {{…}} template');

/**
 * Waits `durationMs` (or a template resolving to a number) or `until` an ISO-8601 time
 * (or a template resolving to one): exactly one of them (validate.ts). A durable timer:
 * the wake time is recorded when the step starts and any worker fires it.
 */
export const sleepStepSchema = z.strictObject({
  ...common,
  type: z.literal('sleep'),
  durationMs: z.union([z.number().int().min(0).max(MAX_SLEEP_MS), wholeTemplate]).optional(),
  until: z.string().min(1).optional(),
});

export const failStepSchema = z.strictObject({
  ...common,
  type: z.literal('fail'),
  message: z.string().default('step failed'),
  /** Whether the failure may be retried (lets demos show retries). */
  retryable: z.boolean().default(false),
});

/** Waits until a signal with this name is delivered; its payload becomes the output. */
export const signalStepSchema = z.strictObject({ ...common, type: z.literal('signal'), name: stepId.optional() });

/**
 * Waits for the first event on `subject` published after the step started (or after `after`: an
 * ISO-8601 time, or a `{{…}}` template or `{% … %}` expression giving one) for which `match`
 * (a `{% … %}` expression over `event`, `input`, `steps`) is true; `timeoutMs` fails it with
 * EVENT_TIMEOUT. To the machine it is a signal step whose signal is `eventSignalName(id)`.
 */
export const waitForEventStepSchema = z.strictObject({ ...common, type: z.literal('waitForEvent'), subject, match: z.string().optional(), after: z.string().min(1).optional() });
/** The internal signal that delivers a waitForEvent step's event (':' never occurs in a user's signal name). */
export const eventSignalName = (stepId: string) => `event:${stepId}`;

export const llmStepSchema = z.strictObject({
  ...common,
  type: z.literal('llm'),
  /** A model id or alias (src/llm/README.md); `default` is the configured default model (SMARTSPEC_LLM_DEFAULT_MODEL, else local/echo). */
  model: z.string().min(1).default('default'),
  system: z.string().optional(),
  prompt: z.string(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().min(1).optional(),
  json: z.boolean().optional(),
  /** A JSON Schema the answer must match: asked for as structured output, checked, re-asked (src/llm/stepRules.ts, docs/llm.md). */
  schema: z.record(z.string(), z.unknown()).optional(),
  /** Models tried in order when the model fails with a retryable error (429, 5xx, timeouts); literal ids or aliases. */
  fallbackModels: z.array(z.string().min(1)).min(1).max(10).optional(),
});

/** How deep containers may nest: a step inside a block of a container inside … (the top level is depth 0). */
export const MAX_NESTING = 8;
/** Most iterations a loop may declare. */
export const MAX_LOOP_ITERATIONS = 10_000;
/** Most items of a map run at a time. */
export const MAX_MAP_CONCURRENCY = 1_000;

/** A string that is exactly one `{{…}}` template or one `{% … %}` expression. */
const templateOrExpression = z
  .string()
  .regex(/^(\{\{[^{}]*\}\}|\{%[\s\S]*%\})$/, 'must be a single {{…}} template or a {% … %} expression');
/** A block: steps run in order. */
const block = () => z.array(stepSchema);
const nonEmptyBlock = () => z.array(stepSchema).min(1, 'a block needs at least one step');

export const switchStepSchema = z.strictObject({
  ...common,
  type: z.literal('switch'),
  cases: z
    .array(z.strictObject({ when: z.string().min(1), get steps() { return block(); } }))
    .min(1, 'a switch needs at least one case'),
  get default() { return block().optional(); },
});

/** A branch name becomes a key of the output object and a state node: the rules of a step id. */
export const parallelStepSchema = z.strictObject({
  ...common,
  type: z.literal('parallel'),
  get branches() {
    return z.record(stepId, nonEmptyBlock()).refine((b) => Object.keys(b).length > 0, { message: 'a parallel step needs at least one branch' });
  },
});

export const mapStepSchema = z.strictObject({
  ...common,
  type: z.literal('map'),
  /** A template or expression giving the array to run the block for. */
  items: templateOrExpression,
  maxConcurrency: z.number().int().min(1).max(MAX_MAP_CONCURRENCY).default(10),
  toleratedFailures: z.number().int().min(0).default(0),
  get steps() { return nonEmptyBlock(); },
});

export const loopStepSchema = z.strictObject({
  ...common,
  type: z.literal('loop'),
  /** An expression (or template) read after each iteration: the loop stops when it is true. */
  until: z.string().min(1).optional(),
  maxIterations: z.number({ error: (i) => (i.input === undefined ? 'a loop needs maxIterations (a bound on how often it runs)' : undefined) })
    .int().min(1).max(MAX_LOOP_ITERATIONS),
  onMaxIterations: z.enum(['fail', 'continue']).default('fail'),
  get steps() { return nonEmptyBlock(); },
});

export const graphStepSchema = z.strictObject({
  ...common,
  type: z.literal('graph'),
  get steps() { return nonEmptyBlock(); },
});

export const workflowStepSchema = z.strictObject({
  ...common,
  type: z.literal('workflow'),
  workflowId: stepId,
  version: z.number().int().min(1).optional(),
  input: z.unknown().optional(),
});

export type LeafStep =
  | z.infer<typeof transformStepSchema>
  | z.infer<typeof httpStepSchema>
  | z.infer<typeof sleepStepSchema>
  | z.infer<typeof failStepSchema>
  | z.infer<typeof signalStepSchema>
  | z.infer<typeof llmStepSchema>
  | z.infer<typeof waitForEventStepSchema>;
type Common = z.infer<z.ZodObject<typeof common>>;
export type SwitchStep = Common & { type: 'switch'; cases: { when: string; steps: Step[] }[]; default?: Step[] };
export type ParallelStep = Common & { type: 'parallel'; branches: Record<string, Step[]> };
export type MapStep = Common & { type: 'map'; items: string; maxConcurrency: number; toleratedFailures: number; steps: Step[] };
export type LoopStep = Common & { type: 'loop'; until?: string; maxIterations: number; onMaxIterations: 'fail' | 'continue'; steps: Step[] };
export type GraphStep = Common & { type: 'graph'; steps: Step[] };
export type WorkflowStep = z.infer<typeof workflowStepSchema>;
export type ContainerStep = SwitchStep | ParallelStep | MapStep | LoopStep | GraphStep;
export type Step = LeafStep | ContainerStep | WorkflowStep;

export const stepSchema: z.ZodType<Step, unknown> = z.discriminatedUnion('type', [
  transformStepSchema,
  httpStepSchema,
  sleepStepSchema,
  failStepSchema,
  signalStepSchema,
  llmStepSchema,
  waitForEventStepSchema,
  switchStepSchema,
  parallelStepSchema,
  mapStepSchema,
  loopStepSchema,
  graphStepSchema,
  workflowStepSchema,
]) as unknown as z.ZodType<Step, unknown>;

export const budgetSchema = z.strictObject({ maxTokens: z.number().int().min(1) });

/** Start an execution per matching event published on `subject` (docs/events.md); expressions are `{% … %}` JSONata. */
export const triggerSchema = z.strictObject({
  subject,
  filter: z.string().optional(),
  input: z.unknown().optional(),
  idempotencyKey: z.string().optional(),
});

export const definitionSchema = z.strictObject({
  /** Where editors find the JSON Schema (`smartspec schema`, GET /schemas/definition.json); ignored. */
  $schema: z.string().optional(),
  id: stepId,
  version: z.number().int().min(1).optional(),
  description: z.string().optional(),
  steps: z.array(stepSchema).min(1, 'a workflow needs at least one step'),
  parallel: z.array(z.array(z.string()).min(1, 'a parallel group needs at least one step')).default([]),
  budget: budgetSchema.optional(),
  triggers: z.array(triggerSchema).max(16, 'at most 16 triggers per workflow').optional(),
  /** At most `limit` executions of a key run at once; the others wait, queued (src/concurrency). */
  concurrency: concurrencySchema.optional(),
  /** Executions started per minute under a key, and the LLM tokens all their steps use per minute. */
  rateLimit: rateLimitSchema.optional(),
});

export type RetryPolicy = z.infer<typeof retrySchema>;
export type StepType = Step['type'];
export type Definition = z.infer<typeof definitionSchema>;
export type Budget = z.infer<typeof budgetSchema>;
export type Trigger = z.infer<typeof triggerSchema>;
export type ConcurrencyLimit = z.infer<typeof concurrencySchema>[number];
export type RateLimit = z.infer<typeof rateLimitSchema>;
export const STEP_TYPES = ['transform', 'http', 'sleep', 'fail', 'signal', 'llm', 'waitForEvent', 'switch', 'parallel', 'map', 'loop', 'graph', 'workflow'] as const satisfies readonly StepType[];
export const CONTAINER_TYPES = ['switch', 'parallel', 'map', 'loop', 'graph'] as const satisfies readonly ContainerStep['type'][];
export const isContainer = (s: Step): s is ContainerStep => (CONTAINER_TYPES as readonly string[]).includes(s.type);
