/**
 * `smartspec validate <file>`: every problem of a definition at once, each
 * with its line and column, as `file:line:column: path: message` (the form
 * editors and CI annotations read). Needs no NATS.
 */
import { validateDefinition, parseDocument, type Issue } from '../../definition/validate.js';
import { positionsOf } from '../../definition/positions.js';
import { DefinitionError } from '../../errors.js';
import type { CommandRun } from '../commandTable.js';
import { need, readText } from '../args.js';
import { out } from '../io.js';

export const validate: CommandRun = async ({ args, opts }) => {
  need(args, 1, 'validate', '<file> [--json]');
  const file = args[0];
  const text = await readText(file);
  let issues: Issue[] = [];
  let workflow: { id: string; steps: number } | undefined;
  try {
    const def = validateDefinition(parseDocument(text, file));
    workflow = { id: def.id, steps: def.steps.length };
  } catch (err) {
    if (!(err instanceof DefinitionError)) throw err;
    const locate = positionsOf(text);
    issues = err.issues.map((i) => (i.line !== undefined || !locate ? i : { ...i, ...locate(i.path) }));
    issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0)); // in the order of the text
  }
  if (opts.json) {
    out(JSON.stringify({ file, valid: issues.length === 0, ...(workflow ? { workflowId: workflow.id } : {}), issues }, null, 2));
    return issues.length ? 1 : 0;
  }
  if (workflow) {
    out(`${file}: valid (workflow ${workflow.id}, ${workflow.steps} step${workflow.steps === 1 ? '' : 's'})`);
    return 0;
  }
  for (const i of issues) {
    const where = i.line !== undefined ? `:${i.line}:${i.column}` : '';
    const message = where ? i.message.replace(/ \(line \d+, column \d+\)$/, '') : i.message;
    out(`${file}${where}: ${i.path === '(document)' ? '' : `${i.path}: `}${message}`);
  }
  out(`${issues.length} problem${issues.length === 1 ? '' : 's'} in ${file}`);
  return 1;
};
