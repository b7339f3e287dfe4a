/**
 * Definition rules for the fields of an `llm` step that zod cannot check:
 * `schema` must be a JSON Schema ajv accepts (describing an object), and
 * `fallbackModels` are literal model ids or aliases. Which models exist is
 * configuration of the worker that runs the step, so it is checked there,
 * before the first call (runLlmStep). Pure.
 */
import type { Step } from '../../machines/definition.js';
import { schemaProblems } from './outputSchema.js';

type LlmStepDefinition = Extract<Step, { type: 'llm' }>;

/** The problems of one llm step; `path` is where the step is (`steps[3]`). */
export function llmStepIssues(step: LlmStepDefinition, path: string): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  if (step.schema !== undefined) {
    for (const p of schemaProblems(step.schema)) issues.push({ path: `${path}.schema${suffix(p.at)}`, message: `not a valid JSON Schema: ${p.message}` });
  }
  const seen = new Map<string, number>();
  step.fallbackModels?.forEach((name, i) => {
    const at = `${path}.fallbackModels[${i}]`;
    // The runner resolves templates only in prompt, system and model: a template here would be sent as a model name.
    if (name.includes('{{') || name.includes('{%')) issues.push({ path: at, message: `'${name}': fallback models are model ids or aliases, not templates` });
    else if (name.trim() === step.model.trim()) issues.push({ path: at, message: `'${name}' is the step's own model` });
    else if (seen.has(name.trim())) issues.push({ path: at, message: `'${name}' is listed twice (also fallbackModels[${seen.get(name.trim())}])` });
    seen.set(name.trim(), i);
  });
  return issues;
}

function suffix(at: (string | number)[]): string {
  return at.map((s) => (typeof s === 'number' ? `[${s}]` : /^[A-Za-z_$][\w$]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`)).join('');
}
