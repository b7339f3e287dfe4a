/** `smartspec help`, `smartspec <command> --help` and `--version`, from the command table. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS, commandNamed, type CommandSpec, type CommandRun } from './commandTable.js';
import { InvalidInputError } from '../errors.js';
import { closest } from '../suggest.js';
import { out } from './io.js';

const ENVIRONMENT = `NATS: NATS_URL, or (unset) an embedded nats-server with its data in ./smartspec-data
(SMARTSPEC_DATA_DIR), shared by the commands of that folder and stopped when the last
of them ends. Exit codes: 0 done, 1 the execution failed (or did not verify), 2 the
command was refused (bad arguments, unknown id), 130 interrupted.`;

export function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length + 1 + c.usage.length));
  const lines = COMMANDS.map((c) => {
    const head = `${c.name} ${c.usage}`;
    return head.length <= Math.min(width, 52) ? `  ${head.padEnd(Math.min(width, 52))}  ${c.summary}` : `  ${head}\n  ${''.padEnd(Math.min(width, 52))}  ${c.summary}`;
  });
  return `smartspec ${version()} — durable workflows on NATS JetStream

Usage: smartspec <command> [arguments] [options]

${lines.join('\n')}

  smartspec <command> --help    examples and options of one command
  smartspec --version

${ENVIRONMENT}`;
}

export function commandHelp(c: CommandSpec): string {
  const options = Object.entries(c.options).map(([name, o]) => `--${name}${o.type === 'string' ? ' VALUE' : ''}`);
  return [
    `smartspec ${c.name}${c.usage ? ` ${c.usage}` : ''}`,
    '',
    `  ${c.summary}`,
    ...(c.details ? ['', ...wrap(c.details, 76).map((l) => `  ${l}`)] : []),
    ...(options.length ? ['', `Options: ${options.join(', ')}, --help`] : []),
    '',
    'Examples:',
    ...c.examples.map((e) => `  ${e}`),
  ].join('\n');
}

/** `smartspec help [command]`. */
export const helpCommand: CommandRun = async ({ args }) => {
  if (args.length === 0) {
    out(overview());
    return 0;
  }
  const c = commandNamed(args[0]);
  if (!c) throw unknownCommand(args[0]);
  out(commandHelp(c));
  return 0;
};

export function unknownCommand(name: string): InvalidInputError {
  const guess = closest(name, COMMANDS.map((c) => c.name));
  return new InvalidInputError(`unknown command '${name}'${guess ? `: did you mean 'smartspec ${guess}'?` : ''} (smartspec help lists them)`);
}

/** The package's version, from its package.json (found upward from here, from source or a build). */
export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'smartspec-orchestrator' && pkg.version) return pkg.version;
    } catch {
      // not here: one folder up
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
