/**
 * `smartspec workflows register | list | show | disable | enable | rm`: the
 * workflow registry straight on NATS, as the /workflows routes do it (on the
 * default tenant, or --tenant T). Disabling or deleting a workflow stops its
 * triggers and schedules; running executions go on.
 */
import { DEFAULT_TENANT, TENANT_ID } from '../../auth/principal.js';
import { parseDocument, validateDefinition } from '../../definition/validate.js';
import { InvalidInputError } from '../../errors.js';
import { disabledState, WorkflowRegistry, workflowView as view, type StoredWorkflow } from '../../registry/workflows.js';
import type { CommandRun } from '../commandTable.js';
import { withNats } from '../connect.js';
import { readText } from '../args.js';
import { out } from '../io.js';

export const WORKFLOWS_USAGE = 'usage: smartspec workflows register <file> | list | show <id> | disable <id> | enable <id> | rm <id> [--tenant T] [--json]';
const ACTIONS = ['register', 'list', 'show', 'disable', 'enable', 'rm'];

export const workflows: CommandRun = async ({ args, opts }) => {
  const [action, arg] = args;
  if (!ACTIONS.includes(action) || (action !== 'list' && !arg)) throw new InvalidInputError(action && !ACTIONS.includes(action) ? `unknown workflows command '${action}'\n${WORKFLOWS_USAGE}` : WORKFLOWS_USAGE);
  const tenant = (opts.tenant as string | undefined) ?? DEFAULT_TENANT;
  if (!TENANT_ID.test(tenant)) throw new InvalidInputError(`--tenant '${tenant}' is not a tenant id`);
  // Read before connecting: a file that is not a definition needs no NATS to be refused.
  const definition = action === 'register' ? validateDefinition(parseDocument(await readText(arg), arg)) : undefined;
  return withNats(async ({ nc, replicas }) => {
    const registry = await WorkflowRegistry.open(nc, replicas);
    const print = (w: StoredWorkflow, line: string) => out(opts.json ? JSON.stringify(view(w), null, 2) : line);
    switch (action) {
      case 'register': {
        const stored = await registry.register(definition!, new Date(), tenant);
        print(stored, `registered ${stored.id} v${stored.version}${stored.disabledAt ? ' (disabled: enable it to start it)' : ''}`);
        return 0;
      }
      case 'list': {
        const all = await registry.list(tenant);
        if (opts.json) out(JSON.stringify(all.map(({ definition: d, disabledAt, ...w }) => ({ ...w, steps: d.steps.length, ...disabledState(disabledAt) })), null, 2));
        else for (const w of all) out(`${w.id.padEnd(24)} v${String(w.version).padEnd(4)} ${String(w.definition.steps.length).padStart(3)} steps  ${w.createdAt}${w.disabledAt ? `  disabled since ${w.disabledAt}` : ''}`);
        return 0;
      }
      case 'show': {
        const w = await registry.get(arg, undefined, tenant);
        print(w, JSON.stringify(view(w), null, 2));
        return 0;
      }
      case 'disable':
      case 'enable': {
        const w = await registry.setDisabled(arg, action === 'disable', new Date(), tenant);
        print(w, w.disabledAt ? `workflow ${w.id} disabled (since ${w.disabledAt}): its triggers and schedules start nothing; running executions go on` : `workflow ${w.id} enabled`);
        return 0;
      }
      default:
        await registry.remove(arg, tenant);
        out(opts.json ? JSON.stringify({ id: arg, deleted: true }) : `workflow ${arg} deleted (every version); executions of it stay readable`);
        return 0;
    }
  });
};
