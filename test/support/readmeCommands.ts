/**
 * The shell commands a README shows: every line of its ```sh blocks, with
 * `\` continuations joined and trailing `# comments` dropped, so a test can
 * run each one as written (and notice a new one it does not handle yet).
 */
export interface ReadmeCommand {
  /** 1-based line of the README where the command starts. */
  line: number;
  /** 0-based index of its ```sh block. */
  block: number;
  text: string;
  /** The comment after it, if any (it may say what to expect: "exits 1"). */
  comment: string;
}

export function readmeCommands(markdown: string): ReadmeCommand[] {
  const commands: ReadmeCommand[] = [];
  const lines = markdown.split('\n');
  let inSh = false;
  let block = -1;
  let pending: ReadmeCommand | undefined;
  lines.forEach((raw, i) => {
    if (/^```/.test(raw)) {
      inSh = !inSh && /^```(sh|bash|shell)\s*$/.test(raw);
      if (inSh) block++;
      return;
    }
    if (!inSh) return;
    const m = /^(.*?)(?:\s+#\s(.*))?$/.exec(raw)!;
    const text = m[1].trimEnd();
    const comment = m[2] ?? '';
    if (pending) {
      pending.text += ' ' + text.replace(/\\$/, '').trim();
      if (comment) pending.comment = comment;
      if (!text.endsWith('\\')) pending = undefined;
      return;
    }
    if (!text.trim()) return;
    const command: ReadmeCommand = { line: i + 1, block, text: text.replace(/\\$/, '').trim(), comment };
    commands.push(command);
    if (text.endsWith('\\')) pending = command;
  });
  return commands.map((c) => ({ ...c, text: c.text.replace(/\s+/g, ' ') }));
}
