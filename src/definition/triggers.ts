/**
 * Checks of a definition's `triggers` and `waitForEvent` steps that the schema
 * cannot express: expressions that parse, subjects that are not the system's.
 */
import { walkSteps } from '../../machines/blocks.js';
import type { Definition } from '../../machines/definition.js';
import { expressionBody, expressionProblems } from '../events/expressions.js';
import { ISO_TIME_HINT, parseIsoTime } from './sleep.js';

const reserved = (subject: string, path: string) =>
  /^(smartspec|\$)/i.test(subject) ? [{ path, message: `'${subject}' is reserved (smartspec.* and $… are the system's own subjects)` }] : [];

export function checkTriggers(def: Definition): { path: string; message: string }[] {
  const waits = [...walkSteps(def.steps)].flatMap(({ step: s, path }) => {
    if (s.type !== 'waitForEvent') return [];
    const issues = reserved(s.subject, `${path}.subject`);
    if (s.match !== undefined && expressionBody(s.match) === undefined) issues.push({ path: `${path}.match`, message: 'must be a {% … %} expression, e.g. "{% event.orderId = input.orderId %}"' });
    else if (s.match !== undefined) issues.push(...expressionProblems(s.match, `${path}.match`));
    // A template's or an expression's references are checked with every step's (references.ts).
    if (s.after !== undefined && expressionBody(s.after) === undefined && !s.after.includes('{{') && parseIsoTime(s.after) === undefined) {
      issues.push({ path: `${path}.after`, message: `'${s.after}' is not ${ISO_TIME_HINT}, nor a {{…}} template or {% … %} expression` });
    }
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
