/**
 * Templates are path lookups into plain data: a whole-string template keeps
 * the value's type, interpolation turns values into text, a missing path is an
 * error, `when` follows fixed truthiness rules, and nothing is ever evaluated
 * as code or reaches into prototypes.
 */
import { describe, expect, it } from 'vitest';
import { collectTemplates, evaluateWhen, lookup, resolveTemplates, TemplateError, type TemplateScope } from '../../src/definition/templates.js';

const scope: TemplateScope = {
  input: {
    feature: 'export',
    n: 42,
    zero: 0,
    yes: true,
    no: false,
    empty: '',
    nil: null,
    falseText: 'false',
    trueText: 'true',
    obj: { a: [1, { b: 'deep' }], 'dash-key': 'd' },
    list: ['x', 'y'],
  },
  steps: { draft: { output: { text: 'Draft text', score: 0.5 } }, skipped: { output: null } },
  execution: { id: 'exec-1', workflowId: 'wf' },
};

const resolve = (v: unknown) => resolveTemplates(v, scope);

describe('resolveTemplates', () => {
  it('a whole-string template keeps the value as it is (objects, arrays, numbers, booleans, null)', () => {
    expect(resolve('{{input.obj}}')).toEqual({ a: [1, { b: 'deep' }], 'dash-key': 'd' });
    expect(resolve('{{input.obj}}')).toBe((scope.input as { obj: unknown }).obj);
    expect(resolve('{{input.list}}')).toEqual(['x', 'y']);
    expect(resolve('{{input.n}}')).toBe(42);
    expect(resolve('{{input.yes}}')).toBe(true);
    expect(resolve('{{input.nil}}')).toBeNull();
    expect(resolve('{{steps.draft.output}}')).toEqual({ text: 'Draft text', score: 0.5 });
    expect(resolve('{{ steps.draft.output.score }}')).toBe(0.5); // spaces inside the braces
  });

  it('walks into arrays by index and keys with dashes', () => {
    expect(resolve('{{input.obj.a.1.b}}')).toBe('deep');
    expect(resolve('{{input.obj.dash-key}}')).toBe('d');
    expect(resolve('{{input.list.0}}')).toBe('x');
  });

  it('interpolates inside longer strings: strings as they are, other values as JSON', () => {
    expect(resolve('Spec for {{input.feature}}!')).toBe('Spec for export!');
    expect(resolve('n={{input.n}} ok={{input.yes}} nil={{input.nil}}')).toBe('n=42 ok=true nil=null');
    expect(resolve('obj: {{input.obj}}')).toBe('obj: {"a":[1,{"b":"deep"}],"dash-key":"d"}');
    expect(resolve('{{execution.id}}/{{execution.workflowId}}')).toBe('exec-1/wf');
    expect(resolve('{{input.feature}}{{input.feature}}')).toBe('exportexport');
  });

  it('resolves templates anywhere in nested objects and arrays, leaving other values alone', () => {
    const value = { url: 'http://h/{{input.feature}}', body: { spec: '{{steps.draft.output.text}}', list: ['{{input.n}}', 7, false, null] }, n: 3 };
    expect(resolve(value)).toEqual({ url: 'http://h/export', body: { spec: 'Draft text', list: [42, 7, false, null] }, n: 3 });
    // the definition is not modified
    expect(value.body.spec).toBe('{{steps.draft.output.text}}');
  });

  it('a missing path is an error naming the template', () => {
    for (const t of ['{{input.missing}}', 'x {{input.obj.a.9}} y', '{{steps.nope.output}}', '{{steps.draft.output.text.more}}', '{{input.nil.x}}']) {
      let caught: unknown;
      try {
        resolve(t);
      } catch (e) {
        caught = e;
      }
      expect(caught, t).toBeInstanceOf(TemplateError);
      expect((caught as TemplateError).code).toBe('TEMPLATE_ERROR');
      expect((caught as TemplateError).message).toMatch(/does not resolve: no value at '/);
    }
  });

  it('a present null is a value, not a missing path', () => {
    expect(resolve('{{steps.skipped.output}}')).toBeNull();
  });

  it('rejects what is not a dotted path', () => {
    for (const t of ['{{ input.x + 1 }}', '{{input["x"]}}', '{{ input..x }}', '{{}}', '{{ input.x | upper }}', '{{ a b }}']) {
      expect(() => resolve(t), t).toThrow(TemplateError);
    }
  });
});

describe('nothing is evaluated as code', () => {
  const probes = [
    '{{constructor}}',
    '{{constructor.constructor}}',
    '{{__proto__}}',
    '{{__proto__.constructor}}',
    '{{input.__proto__}}',
    '{{input.constructor.constructor}}',
    '{{input.feature.constructor}}',
    '{{input.feature.length}}',
    '{{input.toString}}',
    '{{input.hasOwnProperty}}',
    '{{steps.draft.output.text.constructor.constructor}}',
    '{{steps.__proto__}}',
    '{{execution.valueOf}}',
  ];

  it.each(probes)('%s does not resolve to a function or prototype member', (t) => {
    let result: unknown;
    let error: unknown;
    try {
      result = resolve(t);
    } catch (e) {
      error = e;
    }
    // either a clear TemplateError, or (never) a plain value — but not a function, not a crash
    if (error) expect(error).toBeInstanceOf(TemplateError);
    expect(typeof result).not.toBe('function');
    expect(result).not.toBe(Object.prototype);
    expect(result).not.toBe(Function);
  });

  it('inherited members are not found by lookup', () => {
    expect(lookup(scope, ['input', 'toString'])).toEqual({ found: false, value: undefined });
    expect(lookup(scope, ['__proto__'])).toEqual({ found: false, value: undefined });
    expect(lookup(scope, ['input', 'feature', 'length'])).toEqual({ found: false, value: undefined }); // strings have no own keys here
  });

  it('a key named __proto__ in the data is plain data', () => {
    const input = JSON.parse('{"__proto__": {"polluted": true}}') as unknown;
    const s: TemplateScope = { ...scope, input };
    expect(resolveTemplates('{{input.__proto__.polluted}}', s)).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('interpolated text that looks like a template is not resolved again', () => {
    const s: TemplateScope = { ...scope, input: { a: '{{input.b}}', b: 'secret' } };
    expect(resolveTemplates('x {{input.a}}', s)).toBe('x {{input.b}}');
    expect(resolveTemplates('{{input.a}}', s)).toBe('{{input.b}}');
  });

  it('JavaScript in a template is never run: not a path, so rejected or left as text', () => {
    const g = globalThis as Record<string, unknown>;
    delete g.__templateRan;
    for (const t of ['{{ globalThis.__templateRan = 1 }}', '{{ process.exit(1) }}', '{{ require("fs") }}']) {
      expect(() => resolve(t), t).toThrow(TemplateError);
    }
    // braces inside the expression: not a template at all; resolving leaves the text as it is,
    // and validation (collectTemplates) rejects it as unbalanced
    const iife = '{{ (() => { globalThis.__templateRan = 1 })() }}';
    expect(resolve(iife)).toBe(iife);
    expect(() => collectTemplates(iife)).toThrow(/unbalanced/);
    expect(g.__templateRan).toBeUndefined();
  });
});

describe('evaluateWhen', () => {
  it.each([
    ['{{input.yes}}', true],
    ['{{input.n}}', true],
    ['{{input.feature}}', true],
    ['{{input.trueText}}', true],
    ['{{input.obj}}', true],
    ['{{input.list}}', true],
    ['literal text', true],
    ['{{input.no}}', false],
    ['{{input.zero}}', false],
    ['{{input.empty}}', false],
    ['{{input.nil}}', false],
    ['{{input.falseText}}', false],
    ['{{input.missing}}', false],
    ['{{steps.skipped.output}}', false],
    ['false', false],
    ['', false],
  ])('%j → %s', (when, expected) => {
    expect(evaluateWhen(when, scope)).toBe(expected);
  });

  it('a prototype probe is false, not truthy', () => {
    expect(evaluateWhen('{{input.constructor}}', scope)).toBe(false);
    expect(evaluateWhen('{{__proto__}}', scope)).toBe(false);
  });

});

describe('collectTemplates', () => {
  it('finds every template with where it stands', () => {
    const refs = collectTemplates({ url: 'http://h/{{input.a}}', body: { list: ['x', '{{steps.s.output.t}} and {{execution.id}}'] } }, 'request');
    expect(refs).toEqual([
      { raw: '{{input.a}}', path: ['input', 'a'], at: 'request.url' },
      { raw: '{{steps.s.output.t}}', path: ['steps', 's', 'output', 't'], at: 'request.body.list.1' },
      { raw: '{{execution.id}}', path: ['execution', 'id'], at: 'request.body.list.1' },
    ]);
  });

  it('ignores non-strings and plain text', () => {
    expect(collectTemplates({ a: 1, b: null, c: true, d: 'no braces here', e: '{ single }' })).toEqual([]);
  });

  it('throws on unbalanced braces', () => {
    expect(() => collectTemplates('{{ input.a')).toThrow(TemplateError);
    expect(() => collectTemplates({ x: ['input.a }}'] })).toThrow(/unbalanced/);
  });
});
