/**
 * `smartspec completion bash | zsh`: a completion script made from the
 * command table: command names, each command's options and sub-commands,
 * and files where a command takes a file.
 */
import { InvalidInputError } from '../../errors.js';
import { COMMANDS } from '../commandTable.js';
import type { CommandRun } from '../commandTable.js';
import { out } from '../io.js';

const optionsOf = (c: (typeof COMMANDS)[number]) => [...Object.keys(c.options).map((o) => `--${o}`), '--help'];

export function bashCompletion(): string {
  const cases = COMMANDS.map((c) => {
    const words = [...(c.subcommands ?? []), ...optionsOf(c)].join(' ');
    const files = c.files || c.name === 'resume' ? ' $(compgen -f -- "$cur")' : '';
    return `    ${c.name}) COMPREPLY=($(compgen -W "${words}" -- "$cur")${files}) ;;`;
  });
  return `# smartspec completion for bash: source <(smartspec completion bash)
_smartspec() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${COMMANDS.map((c) => c.name).join(' ')} --help --version" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases.join('\n')}
    help) COMPREPLY=($(compgen -W "${COMMANDS.map((c) => c.name).join(' ')}" -- "$cur")) ;;
  esac
}
complete -o filenames -F _smartspec smartspec`;
}

export function zshCompletion(): string {
  const quote = (s: string) => s.replace(/'/g, `'\\''`).replace(/:/g, '\\:');
  const commands = COMMANDS.map((c) => `    '${c.name}:${quote(c.summary)}'`);
  const cases = COMMANDS.map((c) => {
    const specs = [...optionsOf(c).map((o) => `'${o}'`), ...(c.subcommands ? [`'1:${c.name} command:(${c.subcommands.join(' ')})'`] : []), ...(c.files ? [`'*:file:_files'`] : [])];
    return `    ${c.name}) _arguments ${specs.join(' ')} ;;`;
  });
  return `#compdef smartspec
# smartspec completion for zsh: source <(smartspec completion zsh), or save it as _smartspec in your $fpath
_smartspec() {
  local -a commands
  commands=(
${commands.join('\n')}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  local cmd=$words[2]
  shift words; (( CURRENT-- ))
  case $cmd in
${cases.join('\n')}
  esac
}
if [ "$funcstack[1]" = "_smartspec" ]; then _smartspec "$@"; else compdef _smartspec smartspec; fi`;
}

export const completion: CommandRun = async ({ args }) => {
  if (args[0] === 'bash') out(bashCompletion());
  else if (args[0] === 'zsh') out(zshCompletion());
  else throw new InvalidInputError(`usage: smartspec completion bash | zsh${args[0] ? ` (no completion for '${args[0]}')` : ''}`);
  return 0;
};
