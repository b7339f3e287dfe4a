/** The schema of an llm step: refused at definition validation with its path, answers checked, the local provider's answers built from it. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DefinitionError } from '../../../src/errors.js';
import { validateDefinition } from '../../../src/definition/validate.js';
import { answerCheck } from '../../../src/llm/outputSchema.js';
import { schemaExample } from '../../../src/llm/providers/schemaExample.js';

function issues(step: Record<string, unknown>, at = 0): { path: string; message: string }[] {
  const steps = [{ id: 'first', type: 'transform', value: 1 }, { id: 'classify', type: 'llm', prompt: 'Classify', ...step }];
  try {
    validateDefinition({ id: 'w', steps: at === 0 ? steps.slice(1) : steps });
  } catch (err) {
    if (err instanceof DefinitionError) return err.issues;
    throw err;
  }
  return [];
}

describe('definition validation of llm schema and fallbackModels', () => {
  it('accepts a JSON Schema describing an object, in any supported draft, and fallback model names', () => {
    expect(issues({ schema: { type: 'object', properties: { category: { enum: ['a', 'b'] } }, required: ['category'] } })).toEqual([]);
    expect(issues({ schema: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', definitions: { x: { type: 'string' } }, properties: { x: { $ref: '#/definitions/x' } } } })).toEqual([]);
    expect(issues({ schema: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { when: { type: 'string', format: 'date-time' } } } })).toEqual([]);
    expect(issues({ model: 'fast', fallbackModels: ['openai/gpt-4o-mini', 'local/echo'] })).toEqual([]);
  });

  it('refuses a schema that is not a valid JSON Schema, naming the place inside it', () => {
    expect(issues({ schema: { type: 'object', properties: { category: { type: 'strin' } } } }, 1)).toEqual([
      { path: 'steps[1].schema.properties.category.type', message: 'not a valid JSON Schema: must be equal to one of the allowed values: "array", "boolean", "integer", "null", "number", "object", "string"' },
    ]);
    expect(issues({ schema: { type: 'object', properties: { tags: { type: 'array', items: [{ type: 'string' }, 3] } } } })[0].path).toBe('steps[0].schema.properties.tags.items');
    expect(issues({ schema: { type: 'object', required: 'category' } })).toEqual([{ path: 'steps[0].schema.required', message: 'not a valid JSON Schema: must be array' }]);
  });

  it('refuses what a meta-schema lets through but would silently do nothing or cannot run', () => {
    const one = (schema: Record<string, unknown>) => issues({ schema });
    expect(one({ type: 'object', requird: ['a'] })).toEqual([{ path: 'steps[0].schema.requird', message: 'not a valid JSON Schema: strict mode: unknown keyword: "requird"' }]);
    expect(one({ type: 'object', properties: { tags: { type: 'array', items: { type: 'string', maxLenght: 3 } } } })[0].path).toBe('steps[0].schema.properties.tags.items.maxLenght');
    expect(one({ type: 'object', properties: { e: { type: 'string', format: 'emial' } } })[0]).toEqual({ path: 'steps[0].schema.properties.e', message: expect.stringMatching(/unknown format "emial"/) });
    expect(one({ type: 'object', properties: { p: { type: 'string', pattern: '(' } } })[0].message).toMatch(/Invalid regular expression/);
    expect(one({ type: 'object', properties: { p: { type: 'string', pattern: '^(\\w+\\s?)*$' } }, patternProperties: { '^(a+)+$': { type: 'string' } } })).toEqual([
      { path: 'steps[0].schema.patternProperties["^(a+)+$"]', message: expect.stringContaining('exponential time') },
      { path: 'steps[0].schema.properties.p.pattern', message: expect.stringContaining('nests repetition') },
    ]);
    expect(one({ type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]{3}-\\d{4}$' } } })).toEqual([]);
    expect(one({ type: 'object', properties: { r: { $ref: 'https://example.com/remote.json' } } })[0].message).toMatch(/can't resolve reference https:\/\/example.com\/remote.json/);
    expect(one({ $schema: 'http://json-schema.org/draft-04/schema#', type: 'object' })).toEqual([
      { path: 'steps[0].schema.$schema', message: expect.stringMatching(/^not a valid JSON Schema: unsupported \$schema 'http:\/\/json-schema.org\/draft-04\/schema#'/) },
    ]);
    expect(one({ type: 'string' })).toEqual([{ path: 'steps[0].schema.type', message: expect.stringContaining('must describe an object') }]);
  });

  it('refuses a schema that is not an object, and fallbackModels that are templates, repeated, or the model itself', () => {
    expect(issues({ schema: 'category' })[0].path).toBe('steps[0].schema');
    expect(issues({ model: 'up/a', fallbackModels: ['{{input.model}}', 'up/b', 'up/b', 'up/a'] })).toEqual([
      { path: 'steps[0].fallbackModels[0]', message: "'{{input.model}}': fallback models are model ids or aliases, not templates" },
      { path: 'steps[0].fallbackModels[2]', message: "'up/b' is listed twice (also fallbackModels[1])" },
      { path: 'steps[0].fallbackModels[3]', message: "'up/a' is the step's own model" },
    ]);
    expect(issues({ fallbackModels: [] })[0].path).toBe('steps[0].fallbackModels');
    expect(issues({ fallbackModels: [''] })[0].path).toBe('steps[0].fallbackModels[0]');
  });

  it('never throws on any JSON object as a schema: it is accepted or refused with paths', () => {
    const schemaLike = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 2 }),
        fc.dictionary(fc.constantFrom('type', 'properties', 'items', 'enum', 'required', '$ref', 'anyOf', 'pattern', 'minimum', 'format', 'const', 'x'), tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 8 }), schemaLike, { maxKeys: 4 }), (schema) => {
        const found = issues({ schema });
        for (const i of found) expect(i.path.startsWith('steps[0].schema')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('reports every problem of every llm step in one pass', () => {
    const err = (() => {
      try {
        validateDefinition({
          id: 'w',
          steps: [
            { id: 'a', type: 'llm', prompt: 'x', schema: { type: 'object', properties: { n: { minimum: 'one' } } } },
            { id: 'b', type: 'llm', prompt: 'y', fallbackModels: ['{{x}}'] },
          ],
        });
      } catch (e) {
        return e as DefinitionError;
      }
    })();
    expect(err?.issues.map((i) => i.path)).toEqual(['steps[0].schema.properties.n.minimum', 'steps[1].fallbackModels[0]']);
  });
});

describe('answerCheck', () => {
  const check = answerCheck({ type: 'object', properties: { category: { enum: ['billing', 'bug'] }, score: { type: 'integer' } }, required: ['category'], additionalProperties: false });

  it('passes a matching answer and lists every problem of one that does not match', () => {
    expect(check({ category: 'bug', score: 3 })).toEqual([]);
    expect(check({ score: 'high', extra: true })).toEqual([
      '(root) must have required property \'category\'',
      '(root) must NOT have additional properties: "extra"',
      '/score must be integer',
    ]);
  });

  it('tells apart schemas with the same $id (ajv keeps no registry of them)', () => {
    const a = answerCheck({ $id: 'https://example.com/s', type: 'object', required: ['a'] });
    const b = answerCheck({ $id: 'https://example.com/s', type: 'object', required: ['b'] });
    expect(a({ a: 1 })).toEqual([]);
    expect(b({ a: 1 })).toEqual(["(root) must have required property 'b'"]);
  });
});

describe('schemaExample (the local provider)', () => {
  const schemas: Record<string, unknown>[] = [
    { type: 'object', properties: { category: { enum: ['billing', 'bug', 'other'] } }, required: ['category'], additionalProperties: false },
    {
      type: 'object',
      properties: {
        title: { type: 'string', minLength: 3, maxLength: 10 },
        when: { type: 'string', format: 'date-time' },
        mail: { type: 'string', format: 'email' },
        count: { type: 'integer', exclusiveMinimum: 4, maximum: 9 },
        ratio: { type: 'number', minimum: 0.25 },
        done: { type: 'boolean' },
        tags: { type: 'array', items: { type: 'string' }, minItems: 2 },
        maybe: { type: ['null', 'string'] },
        kind: { const: 'ticket' },
        either: { anyOf: [{ type: 'integer' }, { type: 'string' }] },
        ref: { $ref: '#/$defs/point' },
      },
      required: ['title', 'extra'],
      $defs: { point: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } }, required: ['x', 'y'] } },
    },
    { type: 'object', properties: { node: { $ref: '#/$defs/tree' } }, $defs: { tree: { type: 'object', properties: { children: { type: 'array', items: { $ref: '#/$defs/tree' } } } } } },
  ];

  it('builds a value that matches the schema', () => {
    for (const schema of schemas) expect(answerCheck(schema)(schemaExample(schema, 'Classify: the printer jams again'))).toEqual([]);
  });

  it('stays small whatever the schema asks for', () => {
    const huge = { type: 'object', properties: { s: { type: 'string', minLength: 1e9 }, list: { type: 'array', minItems: 1e9, items: { type: 'integer' } }, toString: { type: 'boolean' } }, required: ['__proto__'] };
    const value = schemaExample(huge, 'x') as Record<string, unknown>;
    expect((value.s as string).length).toBe(1000);
    expect(value.list).toHaveLength(100);
    expect(Object.keys(value).sort()).toEqual(['__proto__', 'list', 's', 'toString']);
    const wide = { $defs: { n: { type: 'object', properties: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`p${i}`, { $ref: '#/$defs/n' }])) } }, $ref: '#/$defs/n' };
    expect(JSON.stringify(schemaExample(wide, 'x')).length).toBeLessThan(200_000);
  });

  it('picks the enum value the prompt mentions, else the first; same prompt, same answer', () => {
    const [schema] = schemas;
    expect(schemaExample(schema, 'Classify: I was charged twice, a Billing problem')).toEqual({ category: 'billing' });
    expect(schemaExample(schema, 'Classify: the app crashes, surely a bug')).toEqual({ category: 'bug' });
    expect(schemaExample(schema, 'Classify: hello')).toEqual({ category: 'billing' });
    expect(schemaExample(schemas[1], 'p')).toEqual(schemaExample(schemas[1], 'p'));
  });
});
