/**
 * Checks of a definition's `triggers` and `waitForEvent` steps that the schema
 * cannot express: expressions that parse, subjects that are not the system's.
 */
import type { Definition } from '../../machines/definition.js';
import { expressionBody, expressionProblems } from '../events/expressions.js';

const reserved = (subject: string, path: string) =>
  /^(smartspec|\$)/i.test(subject) ? [{ path, message: `'${subject}' is reserved (smartspec.* and $… are the system's own subjects)` }] : [];

export function checkTriggers(def: Definition): { path: string; message: string }[] {
  const waits = def.steps.flatMap((s, i) => {
    if (s.type !== 'waitForEvent') return [];
    const issues = reserved(s.subject, `steps[${i}].subject`);
    if (s.match !== undefined && expressionBody(s.match) === undefined) issues.push({ path: `steps[${i}].match`, message: 'must be a {% … %} expression, e.g. "{% event.orderId = input.orderId %}"' });
    else if (s.match !== undefined) issues.push(...expressionProblems(s.match, `steps[${i}].match`));
    return issues;
  });
  return waits.concat((def.triggers ?? []).flatMap((t, i) => {
    const path = `triggers[${i}]`;
    const issues: { path: string; message: string }[] = [];
    issues.push(...reserved(t.subject, `${path}.subject`));
    for (const field of ['filter', 'idempotencyKey'] as const) {
      const value = t[field];
      if (value === undefined) continue;
      if (expressionBody(value) === undefined) issues.push({ path: `${path}.${field}`, message: `must be a {% … %} expression, e.g. "{% event.id %}"` });
      else issues.push(...expressionProblems(value, `${path}.${field}`));
    }
    if (t.input !== undefined) issues.push(...expressionProblems(t.input, `${path}.input`));
    return issues;
  }));
}
