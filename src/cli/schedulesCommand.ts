/**
 * `smartspec schedules create | list | show | pause | resume | trigger | rm`:
 * the same operations as the /schedules routes (src/schedules/operations.ts),
 * on the default tenant, straight on NATS. It parses its own arguments.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { CommandBus } from '../bus/commands.js';
import { InvalidInputError } from '../errors.js';
import { DEFAULT_TENANT } from '../auth/principal.js';
import { WorkflowRegistry } from '../registry/workflows.js';
import { FiringStarter } from '../schedules/firing.js';
import { createSchedule, pauseSchedule, resumeSchedule, scheduleView, triggerSchedule } from '../schedules/operations.js';
import { ScheduleStore } from '../schedules/scheduleStore.js';

export const SCHEDULES_USAGE = `usage: smartspec schedules create --workflow W (--cron "0 9 * * 1-5" [--timezone Europe/Paris] | --every 15m)
                                [--id ID] [--version N] [--input JSON|@file] [--catchup none|last|all] [--json]
       smartspec schedules list [--json] | show <id> [--json] | pause <id> | resume <id> | trigger <id> | rm <id>`;

export async function schedulesCommand(argv: string[], nc: NatsConnection, replicas: number, out: (line: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        workflow: { type: 'string' }, version: { type: 'string' }, cron: { type: 'string' }, every: { type: 'string' },
        timezone: { type: 'string' }, input: { type: 'string' }, catchup: { type: 'string' }, id: { type: 'string' }, json: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    throw new InvalidInputError(`${(err as Error).message}\n${SCHEDULES_USAGE}`);
  }
  const { values: o, positionals: [action, id] } = parsed;
  const store = await ScheduleStore.open(nc, replicas);
  const workflows = await WorkflowRegistry.open(nc, replicas);
  const tenant = DEFAULT_TENANT;
  const print = (s: ReturnType<typeof scheduleView>) => {
    if (o.json) return out(JSON.stringify(s, null, 2));
    out(`${s.id}  ${s.workflowId}${s.version ? `@v${s.version}` : ''}  ${s.cron ? `cron "${s.cron}" ${s.timezone}` : `every ${s.every}`}  catchup ${s.catchup}  ${s.paused ? 'paused' : `next ${s.nextAt}`}`);
    for (const h of 'history' in s ? s.history ?? [] : []) out(`  ${h.recordedAt}  ${h.kind.padEnd(9)} ${h.at}${h.executionId ? `  ${h.executionId}` : ''}${h.count ? `  (${h.count} firings up to ${h.until}, ${h.reason ?? `catchup ${h.policy}`})` : ''}${h.error ? `  ${h.error}` : ''}`);
  };
  const needId = () => {
    if (!id) throw new InvalidInputError(`smartspec schedules ${action} needs a schedule id\n${SCHEDULES_USAGE}`);
    return id;
  };

  switch (action) {
    case 'create': {
      if (!o.workflow) throw new InvalidInputError(`--workflow is required\n${SCHEDULES_USAGE}`);
      const version = o.version === undefined ? undefined : Number(o.version);
      if (version !== undefined && !(Number.isInteger(version) && version >= 1)) throw new InvalidInputError(`--version must be a whole number from 1, got '${o.version}'`);
      const request = { id: o.id, workflowId: o.workflow, version, cron: o.cron, every: o.every, timezone: o.timezone, catchup: o.catchup, input: o.input === undefined ? undefined : await jsonArg(o.input) };
      print(scheduleView(await createSchedule(store, workflows, request, tenant), false));
      return 0;
    }
    case 'list': {
      const all = (await store.list(tenant)).map((s) => scheduleView(s, false));
      if (o.json) out(JSON.stringify(all, null, 2));
      else all.forEach(print);
      return 0;
    }
    case 'show':
      print(scheduleView(await store.get(tenant, needId()), true));
      return 0;
    case 'pause':
      print(scheduleView(await pauseSchedule(store, tenant, needId()), false));
      return 0;
    case 'resume':
      print(scheduleView(await resumeSchedule(store, tenant, needId()), false));
      return 0;
    case 'trigger': {
      const executionId = await triggerSchedule(store, new FiringStarter(workflows, await CommandBus.open(nc, { replicas })), tenant, needId());
      out(o.json ? JSON.stringify({ scheduleId: id, executionId }) : `started ${executionId} (a worker runs it): smartspec status ${executionId}`);
      return 0;
    }
    case 'rm':
      await store.remove(tenant, needId());
      out(`schedule ${id} deleted`);
      return 0;
    default:
      throw new InvalidInputError(`${action ? `unknown schedules command '${action}'` : 'which schedules command?'}\n${SCHEDULES_USAGE}`);
  }
}

/** `{...}` or `@file.json`. */
async function jsonArg(text: string): Promise<unknown> {
  const source = text.startsWith('@') ? await readFile(text.slice(1), 'utf8').catch((err: Error) => { throw new InvalidInputError(`--input ${text}: ${err.message}`); }) : text;
  try {
    return JSON.parse(source);
  } catch (err) {
    throw new InvalidInputError(`--input is not valid JSON: ${(err as Error).message}`);
  }
}
