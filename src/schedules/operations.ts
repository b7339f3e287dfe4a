/**
 * What the HTTP routes and the CLI do to schedules: create (checked), pause,
 * resume, trigger now, delete, and the view a client reads (with the next
 * firing). One place, so both surfaces refuse the same input the same way.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import type { WorkflowRegistry } from '../registry/workflows.js';
import type { FiringStarter } from './firing.js';
import { SCHEDULE_ID, type Schedule, type ScheduleStore } from './scheduleStore.js';
import { CATCHUP_POLICIES, checkCron, nextFiring, parseEvery } from './timing.js';

/** A schedule's input travels inside every start command: keep it well under NATS's max_payload. */
const MAX_INPUT_BYTES = 64 * 1024;

export const createScheduleBody = z
  .strictObject({
    id: z.string().regex(SCHEDULE_ID, 'must be 1-64 letters, digits, _ or -').optional(),
    workflowId: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'is not a workflow id'),
    version: z.number().int().min(1).optional(),
    cron: z.string().min(1).max(200).optional(),
    every: z.string().min(1).max(50).optional(),
    timezone: z.string().min(1).max(100).optional(),
    input: z.unknown().optional(),
    catchup: z.enum(CATCHUP_POLICIES).default('none'),
  })
  .superRefine((b, ctx) => {
    if ((b.cron === undefined) === (b.every === undefined)) ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give exactly one of cron or every' });
    if (b.every !== undefined) {
      const ms = parseEvery(b.every);
      if (typeof ms === 'string') ctx.addIssue({ code: 'custom', path: ['every'], message: ms });
      if (b.timezone !== undefined) ctx.addIssue({ code: 'custom', path: ['timezone'], message: 'a timezone applies to cron only' });
    }
    if (b.cron !== undefined) {
      const problem = checkCron(b.cron, b.timezone);
      if (problem) ctx.addIssue({ code: 'custom', path: [b.timezone !== undefined && problem.includes(b.timezone) ? 'timezone' : 'cron'], message: problem });
    }
    if (b.input !== undefined && Buffer.byteLength(JSON.stringify(b.input)) > MAX_INPUT_BYTES) ctx.addIssue({ code: 'custom', path: ['input'], message: `is over ${MAX_INPUT_BYTES} bytes (a schedule's input is repeated in every firing)` });
  });

export type CreateSchedule = z.input<typeof createScheduleBody>;

/** Create a schedule for a workflow the tenant has registered; its first firing is the first one after now. */
export async function createSchedule(store: ScheduleStore, workflows: WorkflowRegistry, request: unknown, tenant: string, now = new Date()): Promise<Schedule> {
  const parsed = createScheduleBody.safeParse(request);
  if (!parsed.success) throw new InvalidInputError(parsed.error.issues.map((i) => `${i.path.join('.') || 'schedule'}: ${i.message}`).join('; '));
  const b = parsed.data;
  await workflows.get(b.workflowId, b.version, tenant); // 404 now rather than a failed firing later
  const at = now.toISOString();
  const schedule: Schedule = {
    id: b.id ?? `s${randomBytes(6).toString('hex')}`,
    tenant,
    workflowId: b.workflowId,
    ...(b.version !== undefined ? { version: b.version } : {}),
    ...(b.cron !== undefined ? { cron: b.cron, timezone: b.timezone ?? 'UTC' } : { every: b.every, everyMs: parseEvery(b.every!) as number }),
    anchorAt: at,
    input: b.input ?? {},
    catchup: b.catchup,
    paused: false,
    createdAt: at,
    updatedAt: at,
    cursorAt: at,
    history: [],
  };
  await store.create(schedule);
  return schedule;
}

/** Pause: no firing starts until it is resumed. */
export async function pauseSchedule(store: ScheduleStore, tenant: string, id: string, now = new Date()): Promise<Schedule> {
  await store.mutate(tenant, id, (s) => (s.paused ? undefined : { next: { ...s, paused: true, updatedAt: now.toISOString() }, result: undefined }));
  return store.get(tenant, id);
}

/** Resume: firings that fell while it was paused are not caught up; the next one after now starts. */
export async function resumeSchedule(store: ScheduleStore, tenant: string, id: string, now = new Date()): Promise<Schedule> {
  const at = now.toISOString();
  await store.mutate(tenant, id, (s) => (s.paused ? { next: { ...s, paused: false, cursorAt: at, updatedAt: at }, result: undefined } : undefined));
  return store.get(tenant, id);
}

/** Start one execution now, outside the schedule's timing (paused or not); recorded in its history. */
export async function triggerSchedule(store: ScheduleStore, starter: FiringStarter, tenant: string, id: string, now = new Date()): Promise<string> {
  const schedule = await store.get(tenant, id);
  const at = now.toISOString();
  try {
    const executionId = await starter.start(schedule, now.getTime(), true);
    await store.record(tenant, id, [{ kind: 'triggered', at, recordedAt: at, executionId }]);
    return executionId;
  } catch (err) {
    await store.record(tenant, id, [{ kind: 'failed', at, recordedAt: at, error: (err as Error).message }]).catch(() => undefined);
    throw err;
  }
}

/** What a client reads: the schedule with its next firing (none while paused); `history` only when asked for. */
export function scheduleView(s: Schedule, withHistory: boolean, now = Date.now()) {
  const { history, anchorAt: _anchor, everyMs: _ms, cursorAt: _cursor, ...rest } = s;
  const next = s.paused ? undefined : nextFiring(s, Math.max(now, Date.parse(s.cursorAt)));
  return {
    ...rest,
    nextAt: next === undefined ? null : new Date(next).toISOString(),
    ...(withHistory ? { history: [...history].reverse() } : { lastFiring: [...history].reverse().find((h) => h.kind !== 'skipped') ?? null }),
  };
}
