/** Checks of a definition's `triggers` that its schema cannot express: expressions that parse, subjects that are not ours. */
import type { Definition } from '../../machines/definition.js';
import { expressionBody, expressionProblems } from '../events/expressions.js';

export function checkTriggers(def: Definition): { path: string; message: string }[] {
  return (def.triggers ?? []).flatMap((t, i) => {
    const path = `triggers[${i}]`;
    const issues: { path: string; message: string }[] = [];
    if (/^(smartspec|\$)/i.test(t.subject)) issues.push({ path: `${path}.subject`, message: `'${t.subject}' is reserved (smartspec.* and $… are the system's own subjects)` });
    for (const field of ['filter', 'idempotencyKey'] as const) {
      const value = t[field];
      if (value === undefined) continue;
      if (expressionBody(value) === undefined) issues.push({ path: `${path}.${field}`, message: `must be a {% … %} expression, e.g. "{% event.id %}"` });
      else issues.push(...expressionProblems(value, `${path}.${field}`));
    }
    if (t.input !== undefined) issues.push(...expressionProblems(t.input, `${path}.input`));
    return issues;
  });
}
