/**
 * Checks a definition typed in the editor, as the edge will: the same
 * validation (src/definition/validate.ts, over the zod schema the JSON Schema
 * is generated from), each problem placed at its line and column. JSON is
 * read as YAML (a superset), which gives positions for both. Pure.
 */
import YAML, { LineCounter } from 'yaml';
import { DefinitionError } from '../../../machines/errors.js';
import { validateDefinition } from '../../../src/definition/validate.js';
import { DEFAULT_LIMITS } from '../../../src/limits.js';

export interface TextProblem { line?: number; col?: number; path?: string; message: string }
export interface TextCheck { document?: unknown; problems: TextProblem[] }

/** `steps[2].request.url` → ['steps', 2, 'request', 'url'] */
function segments(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return out;
}

export function checkDefinitionText(text: string): TextCheck {
  if (!text.trim()) return { problems: [{ message: 'empty: write a definition in JSON or YAML' }] };
  const lines = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length) {
    return { problems: doc.errors.map((e) => ({ line: e.linePos?.[0].line, col: e.linePos?.[0].col, message: e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '') })) };
  }
  const document = doc.toJS();
  try {
    validateDefinition(document, { maxSteps: DEFAULT_LIMITS.maxSteps });
    return { document, problems: [] };
  } catch (err) {
    if (!(err instanceof DefinitionError)) return { document, problems: [{ message: (err as Error).message }] };
    return {
      document,
      problems: err.issues.map((issue) => {
        // The nearest node that exists: a missing field is reported where its parent is.
        let path = segments(issue.path);
        let node: { range?: [number, number, number] } | undefined;
        while (path.length && !(node = doc.getIn(path, true) as typeof node)?.range) path = path.slice(0, -1);
        const at = node?.range ? lines.linePos(node.range[0]) : undefined;
        return { line: at?.line, col: at?.col, path: issue.path, message: issue.message };
      }),
    };
  }
}
