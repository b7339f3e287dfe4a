/**
 * What the page uses in place of src/llm/outputSchema.ts (vite.config.ts
 * aliases it): Ajv compiles a JSON Schema to code with `new Function`, which
 * the CSP (default-src 'self') forbids here. So the editor does not check an
 * llm step's `schema` as you type; the edge does when you register, and the
 * page shows its problems then (problem+json `errors`).
 */
import type { JsonSchema, SchemaProblem } from '../../../src/llm/outputSchema.js';

export function schemaProblems(_schema: JsonSchema): SchemaProblem[] {
  return [];
}
