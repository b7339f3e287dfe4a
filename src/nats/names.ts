/** Stream names and subjects: the NATS contract (ARCHITECTURE.md). One place for all of them. */
export const EXECUTIONS_STREAM = 'SMARTSPEC_EXECUTIONS';
export const COMMANDS_STREAM = 'SMARTSPEC_COMMANDS';
export const EXECUTION_SUBJECTS = 'smartspec.exec.*';
export const COMMAND_SUBJECTS = 'smartspec.cmd.*';

export const executionSubject = (executionId: string) => `smartspec.exec.${executionId}`;

/** `timer` is published by workers when a step's durable timer is due (src/timers); `child` when a child execution ends; `wake` when a concurrency key frees a slot (src/concurrency). */
export const COMMAND_TYPES = ['start', 'resume', 'cancel', 'signal', 'timer', 'child', 'wake', 'recover'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];
export const commandSubject = (type: CommandType) => `smartspec.cmd.${type}`;

/**
 * Core NATS request/reply subject on which the process hosting an execution
 * answers (ping, cancel, signal). No responder means no live owner.
 */
export const controlSubject = (executionId: string) => `smartspec.ctl.${executionId}`;

/** KV buckets: registered workflow definitions, and the execution index for listings. */
export const WORKFLOWS_BUCKET = 'smartspec_workflows';
export const EXECUTION_INDEX_BUCKET = 'smartspec_executions';
export const IDEMPOTENCY_BUCKET = 'smartspec_idempotency';

/** Execution ids become subject tokens: keep them to safe characters. */
export const EXECUTION_ID = /^[A-Za-z0-9_-]{1,128}$/;
export const SNAPSHOTS_BUCKET = 'smartspec_snapshots';
/** Object store bucket for values too large to carry inline in a record (src/payloads). */
export const PAYLOADS_BUCKET = 'smartspec_payloads';

/** Pending step timers (sleeps, signal timeouts), one key per execution, step and attempt. */
export const TIMERS_BUCKET = 'smartspec_timers';
/** Secrets set with `smartspec secrets set`, sealed with SMARTSPEC_SECRETS_KEY (src/secrets). */
export const SECRETS_BUCKET = 'smartspec_secrets';
/** API keys (hashes only): see src/auth/keys.ts. */
export const KEYS_BUCKET = 'smartspec_keys';
/** Schedules and their recent firings (src/schedules). */
export const SCHEDULES_BUCKET = 'smartspec_schedules';
/** waitForEvent steps waiting now, one key per execution, step and attempt (src/events). */
export const WAITS_BUCKET = 'smartspec_waits';
/** Concurrency keys (leases and their FIFO queues) and rate keys (src/concurrency). */
export const LEASES_BUCKET = 'smartspec_leases';
