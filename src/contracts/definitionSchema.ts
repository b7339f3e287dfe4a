/**
 * The JSON Schema of workflow definitions, generated from the zod schema the
 * validator uses (machines/definition.ts), for editors and other tools.
 * It describes what an author writes (zod's input side: fields with defaults
 * are optional). Rules zod checks in code (unique ids, templates that refer to
 * earlier steps) are not expressible here: `smartspec validate` checks those.
 */
import { z } from 'zod';
import { definitionSchema } from '../../machines/definition.js';

/** Where the edge serves it, and where definitions' `$schema` may point. */
export const DEFINITION_SCHEMA_PATH = '/schemas/definition.json';

export type JsonSchema = z.core.JSONSchema.BaseSchema;

let cached: JsonSchema | undefined;

/** The JSON Schema (draft 2020-12) of a definition. The same object each call: do not modify it. */
export function definitionJsonSchema(): JsonSchema {
  cached ??= {
    ...z.toJSONSchema(definitionSchema, { io: 'input', target: 'draft-2020-12' }),
    title: 'SmartSpec workflow definition',
    description: 'A workflow: its steps, run in order, with consecutive steps optionally grouped to run in parallel.',
  };
  return cached;
}
