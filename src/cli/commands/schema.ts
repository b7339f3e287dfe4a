/**
 * `smartspec schema`: the JSON Schema of workflow definitions, generated
 * from the zod schema the validator uses (so it cannot drift from it). It
 * describes what may be written: fields with defaults are optional. The rules
 * across fields (unique ids, templates that refer to earlier steps, ...) are
 * beyond JSON Schema: `smartspec validate` checks those.
 */
import { z } from 'zod';
import { definitionSchema } from '../../../machines/definition.js';
import type { CommandRun } from '../commandTable.js';
import { out } from '../io.js';
import { version } from '../help.js';

export function definitionJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(definitionSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'SmartSpec workflow definition', description: `A workflow definition for smartspec-orchestrator ${version()} (docs/architecture.md, "Definitions").` };
}

export const schema: CommandRun = async () => {
  out(JSON.stringify(definitionJsonSchema(), null, 2));
  return 0;
};
