/**
 * `smartspec schema`: the JSON Schema of workflow definitions
 * (src/contracts/definitionSchema.ts, generated from the validator's zod
 * schema; the edge serves the same at /schemas/definition.json). The rules
 * across fields are beyond JSON Schema: `smartspec validate` checks those.
 */
import { definitionJsonSchema } from '../../contracts/definitionSchema.js';
import type { CommandRun } from '../commandTable.js';
import { out } from '../io.js';

export const schema: CommandRun = async () => {
  out(JSON.stringify(definitionJsonSchema(), null, 2));
  return 0;
};
