/**
 * Every `smartspec` command: its usage, what it does, examples, its options,
 * and the module that runs it, imported only when that command runs (so
 * `status` never loads the edge, the LLM layer or the engine). Help, "did you
 * mean" and shell completion are all derived from this table.
 */
import type { ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  /** Positional arguments after the command's name. */
  args: string[];
  opts: Record<string, string | boolean | undefined>;
}

export type CommandRun = (ctx: CommandContext) => Promise<number>;

export interface CommandSpec {
  name: string;
  /** The arguments, as in the usage line: `<file> [--input JSON|@file] [--id ID]`. */
  usage: string;
  summary: string;
  /** More on what it does, for `smartspec <command> --help`. */
  details?: string;
  examples: string[];
  options: Options;
  /** Sub-commands (`nats status`), for completion. */
  subcommands?: string[];
  /** Positional arguments are files (completion offers files). */
  files?: boolean;
  /** The command parses its own arguments (`options` are then for help and completion only). */
  rawArgs?: boolean;
  load: () => Promise<CommandRun>;
}

const json = { json: { type: 'boolean', default: false } } as const satisfies Options;
const service = { insecure: { type: 'boolean', default: false } } as const satisfies Options;

export const COMMANDS: CommandSpec[] = [
  {
    name: 'run',
    usage: '<file> [--input JSON|@file] [--id ID]',
    summary: 'start a workflow and follow it',
    details: 'Starts the workflow of a JSON or YAML definition and prints each transition with its event number and, for a step, how long it took. Exits 0 when it completes, 1 when it fails, 0 when it waits for a signal.',
    examples: [
      `smartspec run examples/fork-join.json --input '{"feature":"export"}'`,
      'smartspec run examples/failing.json --input @input.yaml --id rel-1',
    ],
    options: { input: { type: 'string' }, id: { type: 'string' } },
    files: true,
    load: async () => (await import('./commands/hosted.js')).run,
  },
  {
    name: 'resume',
    usage: '<id> [--from-step S | --checkpoint C] [--steps FILE] [--max-tokens N]',
    summary: 'resume an execution (from a step, a checkpoint, or where it stopped)',
    details: 'Without --from-step or --checkpoint, resumes from where the execution stopped. --steps replaces the steps with those of a corrected definition (JSON or YAML).',
    examples: ['smartspec resume rel-1 --from-step tests --steps examples/corrected.json', 'smartspec resume rel-1 --checkpoint cp-17'],
    options: { 'from-step': { type: 'string' }, checkpoint: { type: 'string' }, steps: { type: 'string' }, 'max-tokens': { type: 'string' } },
    load: async () => (await import('./commands/hosted.js')).resume,
  },
  {
    name: 'signal',
    usage: '<id> <name> [--payload JSON]',
    summary: 'deliver a signal to a waiting step',
    examples: [`smartspec signal order-42 approve --payload '{"by":"ana"}'`],
    options: { payload: { type: 'string' } },
    load: async () => (await import('./commands/hosted.js')).signal,
  },
  {
    name: 'cancel',
    usage: '<id>',
    summary: 'cancel a running or waiting execution',
    examples: ['smartspec cancel order-42'],
    options: {},
    load: async () => (await import('./commands/hosted.js')).cancel,
  },
  {
    name: 'status',
    usage: '<id> [--json]',
    summary: 'status, state, and each step with its duration and output',
    examples: ['smartspec status order-42', 'smartspec status order-42 --json | jq .usage'],
    options: json,
    load: async () => (await import('./commands/inspect.js')).status,
  },
  {
    name: 'list',
    usage: '[--status S] [--workflow W] [--tenant T] [--limit N] [--json]',
    summary: 'executions, newest first (the same filters as GET /executions)',
    examples: ['smartspec list', 'smartspec list --status FAILED --workflow spec-review --limit 20'],
    options: { status: { type: 'string' }, workflow: { type: 'string' }, tenant: { type: 'string' }, limit: { type: 'string' }, ...json },
    load: async () => (await import('./commands/list.js')).list,
  },
  {
    name: 'events',
    usage: '<id> [--from N] [--json]',
    summary: 'the event log, numbered per execution (from event N)',
    examples: ['smartspec events order-42', 'smartspec events order-42 --from 10 --json'],
    options: { from: { type: 'string' }, ...json },
    load: async () => (await import('./commands/inspect.js')).events,
  },
  {
    name: 'timeline',
    usage: '<id>',
    summary: 'a Gantt chart of every step attempt',
    details: 'One row per step attempt, on a common time axis: parallel steps side by side, retries with their backoff, waiting (sleep, signal) shaded.',
    examples: ['smartspec timeline order-42'],
    options: {},
    load: async () => (await import('./commands/inspect.js')).timeline,
  },
  {
    name: 'graph',
    usage: '<file|id>',
    summary: 'the workflow as a Mermaid flowchart (of an execution: with each step\'s state)',
    examples: ['smartspec graph examples/fork-join.json', 'smartspec graph order-42 > order-42.mmd'],
    options: {},
    files: true,
    load: async () => (await import('./commands/graph.js')).graph,
  },
  {
    name: 'checkpoints',
    usage: '<id> [--json]',
    summary: 'step-boundary checkpoints (for resume --checkpoint)',
    examples: ['smartspec checkpoints order-42'],
    options: json,
    load: async () => (await import('./commands/inspect.js')).checkpoints,
  },
  {
    name: 'replay',
    usage: '<id> [--json]',
    summary: 'verify the hash chain and re-derive every state',
    details: 'Exits 0 only when the whole history verifies, 1 when it does not.',
    examples: ['smartspec replay order-42'],
    options: json,
    load: async () => (await import('./commands/inspect.js')).replay,
  },
  {
    name: 'validate',
    usage: '<file> [--json]',
    summary: 'check a definition: every problem at once, with line and column',
    details: 'Exits 0 when the definition is valid, 1 when it is not. Needs no NATS.',
    examples: ['smartspec validate examples/fork-join.json', 'smartspec validate workflow.yaml --json'],
    options: json,
    files: true,
    load: async () => (await import('./commands/validate.js')).validate,
  },
  {
    name: 'schema',
    usage: '',
    summary: 'the JSON Schema of definitions (for editors and tools)',
    examples: ['smartspec schema > definition.schema.json'],
    options: {},
    load: async () => (await import('./commands/schema.js')).schema,
  },
  {
    name: 'purge',
    usage: '--older-than 30d [--dry-run] [--json]',
    summary: 'purge executions that ended longer ago than that',
    examples: ['smartspec purge --older-than 30d --dry-run', 'smartspec purge --older-than 12h'],
    options: { 'older-than': { type: 'string' }, 'dry-run': { type: 'boolean', default: false }, ...json },
    load: async () => (await import('./commands/purge.js')).purge,
  },
  {
    name: 'workflows',
    usage: 'register <file> | list | show <id> | disable <id> | enable <id> | rm <id> [--tenant T] [--json]',
    summary: 'the workflow registry: register, list, disable or enable (triggers and schedules stop), delete',
    details: 'A disabled or deleted workflow starts nothing: its triggers and schedules stop, submissions of it are refused; executions already running go on and stay readable. On the default tenant unless --tenant.',
    examples: ['smartspec workflows register examples/fork-join.json', 'smartspec workflows disable onboard', 'smartspec workflows list --json'],
    options: { tenant: { type: 'string' }, ...json },
    subcommands: ['register', 'list', 'show', 'disable', 'enable', 'rm'],
    files: true,
    load: async () => (await import('./commands/workflows.js')).workflows,
  },
  {
    name: 'schedules',
    usage: 'create --workflow W (--cron EXPR [--timezone TZ] | --every 15m) [--input JSON] [--catchup none|last|all] | list | show <id> | pause <id> | resume <id> | trigger <id> | rm <id>',
    summary: 'start a registered workflow on a schedule (cron, or every N)',
    examples: ['smartspec schedules create --workflow spec-review --cron "0 9 * * 1-5" --timezone Europe/Paris', 'smartspec schedules list', 'smartspec schedules trigger nightly'],
    options: {
      workflow: { type: 'string' }, version: { type: 'string' }, cron: { type: 'string' }, every: { type: 'string' }, timezone: { type: 'string' },
      input: { type: 'string' }, catchup: { type: 'string' }, id: { type: 'string' }, ...json,
    },
    subcommands: ['create', 'list', 'show', 'pause', 'resume', 'trigger', 'rm'],
    rawArgs: true,
    load: async () => (await import('./commands/schedules.js')).schedules,
  },
  {
    name: 'secrets',
    usage: 'set <NAME> | list | rm <NAME>',
    summary: 'secrets for {{secrets.NAME}} (set reads the value from stdin)',
    examples: ['printf %s "$TOKEN" | smartspec secrets set API_TOKEN', 'smartspec secrets list', 'smartspec secrets rm API_TOKEN'],
    options: {},
    subcommands: ['set', 'list', 'rm'],
    load: async () => (await import('./commands/secrets.js')).secrets,
  },
  {
    name: 'keys',
    usage: 'create --tenant T --scopes read,write [--name N] | list [--json] | revoke <keyId>',
    summary: 'API keys: make one (printed once), list them, revoke one',
    examples: ['smartspec keys create --tenant acme --scopes read,write --name ci', 'smartspec keys list', 'smartspec keys revoke k_3f2a…'],
    options: { tenant: { type: 'string' }, scopes: { type: 'string' }, name: { type: 'string' }, ...json },
    subcommands: ['create', 'list', 'revoke'],
    load: async () => (await import('./commands/keys.js')).keys,
  },
  {
    name: 'serve',
    usage: '[--insecure]',
    summary: 'HTTP edge + worker in one process (PORT, default 3000)',
    details: 'Without any API key the edge is open and listens on 127.0.0.1 only; --insecure (SMARTSPEC_INSECURE=true) lets it listen elsewhere anyway (README, "Security").',
    examples: ['smartspec serve', 'PORT=8080 smartspec serve'],
    options: service,
    load: async () => (await import('./commands/serve.js')).serve,
  },
  {
    name: 'edge',
    usage: '[--insecure]',
    summary: 'the HTTP edge alone: publishes commands for the workers',
    examples: ['NATS_URL=nats://127.0.0.1:4222 smartspec edge'],
    options: service,
    load: async () => (await import('./commands/serve.js')).edge,
  },
  {
    name: 'worker',
    usage: '',
    summary: 'a worker alone: consumes commands, hosts executions (run several)',
    examples: ['NATS_URL=nats://127.0.0.1:4222 smartspec worker'],
    options: {},
    load: async () => (await import('./commands/serve.js')).worker,
  },
  {
    name: 'nats',
    usage: 'status | stop',
    summary: 'the embedded nats-server of the data folder',
    examples: ['smartspec nats status', 'smartspec nats stop'],
    options: {},
    subcommands: ['status', 'stop'],
    load: async () => (await import('./commands/nats.js')).nats,
  },
  {
    name: 'completion',
    usage: 'bash | zsh',
    summary: 'a shell completion script',
    examples: ['source <(smartspec completion bash)', 'smartspec completion zsh > "${fpath[1]}/_smartspec"'],
    options: {},
    subcommands: ['bash', 'zsh'],
    load: async () => (await import('./commands/completion.js')).completion,
  },
  {
    name: 'help',
    usage: '[command]',
    summary: 'this overview, or the help of one command',
    examples: ['smartspec help', 'smartspec help run'],
    options: {},
    load: async () => (await import('./help.js')).helpCommand,
  },
];

export const commandNamed = (name: string): CommandSpec | undefined => COMMANDS.find((c) => c.name === name);
