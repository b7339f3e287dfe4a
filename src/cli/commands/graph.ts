/**
 * `smartspec graph <file|id>`: the workflow as a Mermaid flowchart. A file is
 * read as a definition (no NATS needed); anything else is an execution id,
 * whose definition is drawn with the state of each step.
 */
import { access } from 'node:fs/promises';
import { stepPhases } from '../../../machines/index.js';
import { parseDefinition } from '../../definition/validate.js';
import { loadExecution } from '../../log/views.js';
import type { CommandRun } from '../commandTable.js';
import { need, readText } from '../args.js';
import { withLog } from '../connect.js';
import { out } from '../io.js';
import { mermaidFlowchart } from '../mermaid.js';

export const graph: CommandRun = async ({ args }) => {
  need(args, 1, 'graph', '<file|id>');
  const target = args[0];
  if (await exists(target)) {
    out(mermaidFlowchart(parseDefinition(await readText(target), target)));
    return 0;
  }
  return withLog(async ({ log }) => {
    const { fold } = await loadExecution(log, target);
    out(mermaidFlowchart(fold.snapshot.context.definition, stepPhases(fold.snapshot)));
    return 0;
  });
};

const exists = (path: string) => access(path).then(() => true, () => false);
