/**
 * `smartspec`: the command line. It finds the command in the table
 * (src/cli/commandTable.ts), parses that command's options, and imports the
 * module that runs it: a command loads only what it uses. The commands are
 * the composition roots that wire NATS, the event log and the engine.
 */
import { parseArgs } from 'node:util';
import { commandNamed, type CommandSpec } from './cli/commandTable.js';
import { commandHelp, overview, unknownCommand, version } from './cli/help.js';
import { err, interrupt, out } from './cli/io.js';
import { DefinitionError, InvalidInputError, SmartSpecError } from './errors.js';
import { closest } from './suggest.js';

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--version' || first === '-v' || first === 'version') {
    out(version());
    return 0;
  }
  if (first === undefined) {
    err(overview());
    return 2;
  }
  if (first === '--help' || first === '-h') {
    out(overview());
    return 0;
  }
  const command = commandNamed(first);
  if (!command) throw unknownCommand(first);
  if (command.rawArgs && !rest.includes('--help') && !rest.includes('-h')) return (await command.load())({ args: rest, opts: {} });
  const parsed = parseOptions(command, rest);
  if (parsed.values.help) {
    out(commandHelp(command));
    return 0;
  }
  const { help: _help, ...opts } = parsed.values;
  const run = await command.load();
  return run({ args: parsed.positionals, opts });
}

function parseOptions(command: CommandSpec, args: string[]) {
  try {
    return parseArgs({ args, allowPositionals: true, strict: true, options: { ...command.options, help: { type: 'boolean', short: 'h', default: false } } });
  } catch (e) {
    const error = e as NodeJS.ErrnoException;
    if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const typed = /'(-{1,2}[^']*)'/.exec(error.message)?.[1] ?? '?';
      const guess = closest(typed.replace(/^-+/, ''), Object.keys(command.options));
      throw new InvalidInputError(`smartspec ${command.name} has no option ${typed}${guess ? `: did you mean --${guess}?` : ''} (smartspec ${command.name} --help)`);
    }
    if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new InvalidInputError(`${error.message.replace(/\.$/, '')} (smartspec ${command.name} --help)`);
    throw e;
  }
}

main(process.argv.slice(2)).then(
  // A large output to a pipe is still being written: exit once it is out, not cut short.
  (code) => process.stdout.write('', () => process.exit(interrupt.code ?? code)),
  (e) => {
    if (e instanceof DefinitionError) {
      err(`error: invalid definition\n${e.issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
    } else if (e instanceof SmartSpecError) {
      err(`error: ${e.message}`);
    } else {
      err(`error: ${(e as Error).message ?? e}`);
    }
    process.exit(2);
  },
);
