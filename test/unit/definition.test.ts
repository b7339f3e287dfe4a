/**
 * Workflow definitions: JSON and YAML parse to the same definition; every
 * rejection is a DefinitionError whose issues name the offending path and the
 * reason; defaults are applied; nothing invalid is ever accepted silently.
 */
import { describe, expect, it } from 'vitest';
import { parseDefinition, parseDocument, validateDefinition, validateDefinitionCached } from '../../src/definition/validate.js';
import { DefinitionError } from '../../src/errors.js';

type Doc = Record<string, unknown>;
const t = (id: string, value: unknown = 1, extra: Doc = {}) => ({ id, type: 'transform', value, ...extra });

/** The issues of a rejected document (fails the test when it is accepted). */
function issuesOf(doc: unknown): { path: string; message: string }[] {
  let caught: unknown;
  try {
    validateDefinition(doc);
  } catch (err) {
    caught = err;
  }
  expect(caught, 'the definition should have been rejected').toBeInstanceOf(DefinitionError);
  const e = caught as DefinitionError;
  expect(e.code).toBe('INVALID_DEFINITION');
  // the message carries every issue as "path: reason"
  for (const i of e.issues) expect(e.message).toContain(`${i.path}: ${i.message}`);
  expect(e.details).toEqual({ issues: e.issues });
  return e.issues;
}

/** Exactly one issue, at `path`, whose message matches. */
function rejects(doc: unknown, path: string, message: RegExp | string) {
  const issues = issuesOf(doc);
  expect(issues.map((i) => i.path)).toEqual([path]);
  expect(issues[0].message).toMatch(message);
}

describe('parsing', () => {
  const json = JSON.stringify({
    id: 'review',
    steps: [t('draft', { text: 'about {{input.feature}}' }), t('a'), t('b'), t('merge', { a: '{{steps.a.output}}', b: '{{steps.b.output}}' })],
    parallel: [['a', 'b']],
  });
  const yaml = `
id: review
steps:
  - id: draft
    type: transform
    value:
      text: "about {{input.feature}}"
  - { id: a, type: transform, value: 1 }
  - { id: b, type: transform, value: 1 }
  - id: merge
    type: transform
    value:
      a: "{{steps.a.output}}"
      b: "{{steps.b.output}}"
parallel:
  - [a, b]
`;

  it('reads JSON and YAML to the same definition', () => {
    const fromJson = parseDefinition(json, 'review.json');
    const fromYaml = parseDefinition(yaml, 'review.yaml');
    expect(fromYaml).toEqual(fromJson);
    expect(fromJson.steps.map((s) => s.id)).toEqual(['draft', 'a', 'b', 'merge']);
    expect(fromJson.parallel).toEqual([['a', 'b']]);
  });

  it('reads JSON regardless of the file name, and YAML from a .yml file', () => {
    expect(parseDefinition(json, 'whatever.txt').id).toBe('review');
    expect(parseDefinition(yaml, 'x.yml').id).toBe('review');
  });

  it('rejects text that is neither JSON nor YAML, naming the source', () => {
    expect(() => parseDefinition('{"id": "w",', 'broken.json')).toThrow(DefinitionError);
    try {
      parseDefinition('id: w\nsteps:\n  - id: a\n   type: [', 'broken.yaml');
      expect.unreachable();
    } catch (err) {
      const e = err as DefinitionError;
      expect(e.issues[0].path).toBe('(document)');
      expect(e.issues[0].message).toMatch(/^broken\.yaml is not valid YAML: .+ \(line 4, column 1\)$/);
      expect(e.issues[0]).toMatchObject({ line: 4, column: 1 });
    }
  });

  it('refuses well-formed YAML that is not data (an alias to an anchor never set) with a DefinitionError, not a crash', () => {
    // Found by the fuzz suite: `*!` parsed, then threw a ReferenceError when turned into data.
    for (const text of ['*!', 'id: w\nsteps: *nope']) {
      expect(() => parseDefinition(text, 'alias.yaml'), text).toThrow(DefinitionError);
      try {
        parseDefinition(text, 'alias.yaml');
      } catch (err) {
        expect((err as DefinitionError).issues[0].message, text).toMatch(/^alias\.yaml is not valid YAML: .*alias/i);
      }
    }
  });

  it('names the line and column of a JSON syntax error, also where JSON.parse names no position', () => {
    const at = (text: string) => {
      try {
        parseDefinition(text, 'x.json');
      } catch (err) {
        const { line, column, message } = (err as DefinitionError).issues[0];
        return { line, column, message };
      }
      throw new Error('parsed');
    };
    // "Unexpected token '}'": V8 gives no position for this one
    expect(at('{\n  "id": "w",\n  "steps": [\n    { "id": "a", "type": }\n  ]\n}')).toMatchObject({ line: 4, column: 26, message: expect.stringMatching(/^x\.json is not valid JSON: Unexpected token '}' \(line 4, column 26\)$/) });
    // a missing comma: V8's position
    expect(at('{"id": "w"\n "steps": []}')).toMatchObject({ line: 2, column: 2 });
    // the text ends too early
    expect(at('{"id": "w",')).toMatchObject({ line: 1, column: 12 });
  });

  it('reports every YAML syntax error at once', () => {
    try {
      parseDefinition('id: w\nsteps: [\n  {id: a, type: transform\n"unclosed: x\n', 'two.yaml');
      expect.unreachable();
    } catch (err) {
      const issues = (err as DefinitionError).issues;
      expect(issues.length).toBeGreaterThan(1);
      for (const i of issues) expect(i.line).toBeGreaterThan(0);
    }
  });

  it('rejects documents that are not objects', () => {
    for (const text of ['', 'just a string', '[1, 2]', '42']) {
      expect(() => parseDefinition(text, 'doc.yaml'), text).toThrow(DefinitionError);
    }
  });

  it('parseDocument returns the raw document without validating it', () => {
    expect(parseDocument('steps: []', 'x.yaml')).toEqual({ steps: [] });
  });
});

describe('accepted definitions and defaults', () => {
  it('accepts a valid fork-join definition as written', () => {
    const d = validateDefinition({
      id: 'spec-review',
      description: 'A → {B,C,D} → E',
      steps: [
        { id: 'draft', type: 'llm', prompt: 'Draft a spec for {{input.feature}}' },
        { id: 'security', type: 'llm', prompt: 'Review: {{steps.draft.output.text}}' },
        { id: 'perf', type: 'http', request: { method: 'POST', url: 'http://127.0.0.1:9000/perf', body: { spec: '{{steps.draft.output.text}}' } } },
        { id: 'legal', type: 'transform', value: { ok: true } },
        { id: 'wait', type: 'signal', name: 'approval' },
        { id: 'merge', type: 'transform', value: { security: '{{steps.security.output}}', perf: '{{steps.perf.output}}' }, when: '{{input.merge}}' },
      ],
      parallel: [['security', 'perf', 'legal']],
    });
    expect(d.steps).toHaveLength(6);
    expect(d.parallel).toEqual([['security', 'perf', 'legal']]);
  });

  it('applies defaults: onError "fail", no parallel groups, retry fields, step-type fields', () => {
    const d = validateDefinition({
      id: 'w',
      steps: [
        t('a', 1, { retry: {} }),
        { id: 'b', type: 'fail', retry: { maxAttempts: 5 } },
        { id: 'c', type: 'http', request: { url: 'http://127.0.0.1/' } },
        { id: 'd', type: 'llm', prompt: 'hi' },
        t('e'),
      ],
    });
    expect(d.parallel).toEqual([]);
    for (const s of d.steps) expect(s.onError).toBe('fail');
    expect(d.steps[0].retry).toEqual({ maxAttempts: 3, initialDelayMs: 1000, backoffRate: 2, maxDelayMs: 60_000 });
    expect(d.steps[1].retry).toEqual({ maxAttempts: 5, initialDelayMs: 1000, backoffRate: 2, maxDelayMs: 60_000 });
    expect(d.steps[1]).toMatchObject({ message: 'step failed', retryable: false });
    expect(d.steps[2]).toMatchObject({ request: { method: 'GET' } });
    expect(d.steps[3]).toMatchObject({ model: 'default' }); // the router's `default` alias (SMARTSPEC_LLM_DEFAULT_MODEL, else local/echo)
    expect(d.steps[4].retry).toBeUndefined(); // no retry block: a single attempt
  });

  it('keeps onError "continue" when asked', () => {
    expect(validateDefinition({ id: 'w', steps: [t('a', 1, { onError: 'continue' })] }).steps[0].onError).toBe('continue');
  });

  it('accepts groups at the start, at the end, and of one step', () => {
    expect(() => validateDefinition({ id: 'w', steps: [t('a'), t('b'), t('c')], parallel: [['a', 'b']] })).not.toThrow();
    expect(() => validateDefinition({ id: 'w', steps: [t('a'), t('b'), t('c')], parallel: [['b', 'c']] })).not.toThrow();
    expect(() => validateDefinition({ id: 'w', steps: [t('a'), t('b'), t('c')], parallel: [['b']] })).not.toThrow();
    // group members listed out of order are still consecutive
    expect(() => validateDefinition({ id: 'w', steps: [t('a'), t('b'), t('c')], parallel: [['c', 'b']] })).not.toThrow();
  });

  it('accepts templates that refer to a step of an earlier stage', () => {
    expect(() =>
      validateDefinition({ id: 'w', steps: [t('a'), t('b'), t('c'), t('d', '{{steps.b.output}} {{steps.c.output}} {{steps.a.output}}')], parallel: [['b', 'c']] }),
    ).not.toThrow();
  });
});

describe('rejections name the path and the reason', () => {
  it('no steps', () => rejects({ id: 'w', steps: [] }, 'steps', /at least one step/));
  it('missing steps', () => rejects({ id: 'w' }, 'steps', /.+/));
  it('a bad workflow id', () => rejects({ id: '1 bad', steps: [t('a')] }, 'id', /must start with a letter/));
  it('a bad step id', () => rejects({ id: 'w', steps: [t('a.b')] }, 'steps[0].id', /letters, digits/));

  it('unknown step id in a group', () => {
    rejects({ id: 'w', steps: [t('a'), t('b')], parallel: [['a', 'zz']] }, 'parallel[0][1]', /unknown step id 'zz'/);
  });

  it('duplicate step id', () => {
    rejects({ id: 'w', steps: [t('a'), t('b'), t('a')] }, 'steps[2].id', /duplicate step id 'a' \(also steps\[0\]\)/);
  });

  it('non-consecutive group', () => {
    rejects({ id: 'w', steps: [t('a'), t('b'), t('c')], parallel: [['a', 'c']] }, 'parallel[0]', /consecutive.*'b' stand between 'a' and 'c'/);
  });

  it('a step in two groups', () => {
    rejects({ id: 'w', steps: [t('a'), t('b'), t('c')], parallel: [['a', 'b'], ['b', 'c']] }, 'parallel[1][0]', /step 'b' is already in parallel\[0\]/);
  });

  it('a step twice in one group', () => {
    rejects({ id: 'w', steps: [t('a'), t('b')], parallel: [['a', 'a']] }, 'parallel[0][1]', /listed twice/);
  });

  it('an empty group', () => {
    rejects({ id: 'w', steps: [t('a')], parallel: [[]] }, 'parallel[0]', /at least one step/);
  });

  it('unknown step type', () => {
    rejects({ id: 'w', steps: [t('a'), { id: 'b', type: 'shell', command: 'rm -rf /' }] }, 'steps[1].type', /unknown step type 'shell' \(one of transform, http, sleep, fail, signal, llm, waitForEvent, switch, parallel, map, loop, graph, workflow\)/);
  });

  it('missing step type', () => {
    rejects({ id: 'w', steps: [{ id: 'a', value: 1 }] }, 'steps[0].type', /missing step type/);
  });

  it('an unknown field (typo) on a step', () => {
    rejects({ id: 'w', steps: [t('a', 1, { retires: { maxAttempts: 2 } })] }, 'steps[0]', /retires/);
  });

  it('a missing required field', () => {
    rejects({ id: 'w', steps: [{ id: 's', type: 'sleep' }] }, 'steps[0].durationMs', /.+/);
    rejects({ id: 'w', steps: [{ id: 'h', type: 'http', request: {} }] }, 'steps[0].request.url', /.+/);
  });

  it('out-of-range retry and timeout values', () => {
    rejects({ id: 'w', steps: [t('a', 1, { retry: { maxAttempts: 0 } })] }, 'steps[0].retry.maxAttempts', /.+/);
    rejects({ id: 'w', steps: [t('a', 1, { retry: { backoffRate: 0.5 } })] }, 'steps[0].retry.backoffRate', /.+/);
    rejects({ id: 'w', steps: [t('a', 1, { timeoutMs: 0 })] }, 'steps[0].timeoutMs', /.+/);
    rejects({ id: 'w', steps: [t('a', 1, { onError: 'ignore' })] }, 'steps[0].onError', /.+/);
  });

  it('several problems are all reported', () => {
    const issues = issuesOf({ id: 'w', steps: [t('a'), t('a'), t('b')], parallel: [['zz']] });
    expect(issues.map((i) => i.path).sort()).toEqual(['parallel[0][0]', 'steps[1].id']);
  });

  it('problems of every kind at once: an unknown type, a bad field, a duplicate id and a template to an unknown step', () => {
    const issues = issuesOf({
      id: 'w',
      steps: [t('a'), { id: 'b', type: 'tranform', value: 1 }, { id: 'c', type: 'http', request: { url: 'http://x', method: 'FETCH' } }, t('a'), t('d', '{{steps.nope.output}}')],
    });
    expect(issues.map((i) => i.path).sort()).toEqual(['steps[1].type', 'steps[2].request.method', 'steps[3].id', 'steps[4].value']);
    expect(issues.find((i) => i.path === 'steps[1].type')!.message).toMatch(/^unknown step type 'tranform': did you mean 'transform'\?/);
  });

  describe('bad templates', () => {
    it('unknown root', () => {
      rejects({ id: 'w', steps: [t('a', { home: '{{env.HOME}}' })] }, 'steps[0].value.home', /\{\{env\.HOME\}\}: unknown root 'env' \(use input, steps, execution, secrets\)/);
    });

    it('a root that would reach into the runtime', () => {
      rejects({ id: 'w', steps: [t('a', '{{constructor.constructor}}')] }, 'steps[0].value', /unknown root 'constructor'/);
      rejects({ id: 'w', steps: [t('a', '{{process.env}}')] }, 'steps[0].value', /unknown root 'process'/);
    });

    it('unknown step', () => {
      rejects({ id: 'w', steps: [t('a'), t('b', ['x', '{{steps.nope.output}}'])] }, 'steps[1].value.1', /refers to unknown step 'nope'/);
    });

    it('a step that runs later', () => {
      rejects({ id: 'w', steps: [t('a', '{{steps.b.output}}'), t('b')] }, 'steps[0].value', /refers to step 'b', which does not run before 'a'/);
    });

    it('the step itself', () => {
      rejects({ id: 'w', steps: [t('a', 1, { when: '{{steps.a.output}}' })] }, 'steps[0].when', /does not run before 'a'/);
    });

    it('a step of the same parallel group', () => {
      rejects(
        { id: 'w', steps: [t('a'), t('b'), t('c', { fromSibling: '{{steps.b.output}}' })], parallel: [['b', 'c']] },
        'steps[2].value.fromSibling',
        /refers to step 'b', which does not run before 'c'/,
      );
    });

    it('a step reference without .output', () => {
      rejects({ id: 'w', steps: [t('a'), t('b', '{{steps.a.text}}')] }, 'steps[1].value', /steps\.a\.output/);
    });

    it('in an http request, an llm prompt and a fail message', () => {
      rejects({ id: 'w', steps: [{ id: 'h', type: 'http', request: { url: 'http://x/{{nope.y}}' } }] }, 'steps[0].request.url', /unknown root 'nope'/);
      rejects({ id: 'w', steps: [{ id: 'l', type: 'llm', prompt: 'about {{steps.x.output}}' }] }, 'steps[0].prompt', /unknown step 'x'/);
      rejects({ id: 'w', steps: [{ id: 'f', type: 'fail', message: '{{oops}}' }] }, 'steps[0].message', /unknown root 'oops'/);
    });

    it.each([
      ['{{ input.x', 'unclosed'],
      ['input.x }}', 'unopened'],
      ['{{}}', 'empty'],
      ['{{ input.a b }}', 'not a path'],
      ['{{ input..x }}', 'empty segment'],
      ['{{ input.x | upper }}', 'a filter'],
      ['{{ input["x"] }}', 'an index expression'],
      ['{{ input.x + 1 }}', 'an expression'],
    ])('malformed {{ }}: %j (%s)', (value) => {
      rejects({ id: 'w', steps: [t('a', value)] }, 'steps[0].value', /unbalanced|not a path/);
      rejects({ id: 'w', steps: [t('a'), t('b', 1, { when: value })] }, 'steps[1].when', /unbalanced|not a path/);
    });

    // Other template issues name the exact place (steps[0].request.body.spec); a malformed
    // one deep inside a value must too, not just the top-level field.
    it('a malformed template deep inside a value names its exact path', () => {
      rejects(
        { id: 'w', steps: [{ id: 'h', type: 'http', request: { method: 'POST', url: 'http://x/', body: { ok: 'fine', spec: '{{ input.spec' } } }] },
        'steps[0].request.body.spec',
        /unbalanced/,
      );
    });

    // A well-formed template next to a malformed one must not hide the malformed one:
    // otherwise the broken part is kept as literal text at run time (a silent fallback).
    it.each([
      ['{{input.x}} and {{ input.y', 'unclosed after a template'],
      ['{{input.x}} }}', 'stray closing braces after a template'],
      ['{{ broken {{input.x}}', 'unclosed before a template'],
    ])('malformed {{ }} next to a valid template: %j (%s)', (value) => {
      rejects({ id: 'w', steps: [t('a', value)] }, 'steps[0].value', /unbalanced|not a path/);
    });
  });

  it('signal name reused', () => {
    rejects({ id: 'w', steps: [{ id: 'approve', type: 'signal' }, { id: 'again', type: 'signal', name: 'approve' }] }, 'steps[1].name', /signal 'approve' is already awaited by step 'approve'/);
    rejects({ id: 'w', steps: [{ id: 's1', type: 'signal', name: 'go' }, { id: 's2', type: 'signal', name: 'go' }] }, 'steps[1].name', /signal 'go' is already awaited by step 's1'/);
  });

  it('refuses step ids that every JavaScript object already has (__proto__, constructor, toString)', () => {
    for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      let caught: unknown;
      try {
        validateDefinition({ id: 'w', steps: [{ id, type: 'transform', value: 1 }] });
      } catch (err) {
        caught = err;
      }
      expect(caught, id).toBeInstanceOf(DefinitionError);
      expect((caught as DefinitionError).issues).toEqual([{ path: 'steps[0].id', message: expect.stringContaining('reserved name') }]);
    }
  });
});

describe('validateDefinitionCached', () => {
  it('validates a content once: equal documents give the one validated definition, others their own', () => {
    const doc = () => ({ id: 'cached', steps: [t('a', '{{input.x}}'), t('b', '{{steps.a.output}}')] });
    const first = validateDefinitionCached(doc());
    expect(first).toEqual(validateDefinition(doc()));
    expect(validateDefinitionCached(doc())).toBe(first);
    const other = validateDefinitionCached({ ...doc(), id: 'cached-2' });
    expect(other).not.toBe(first);
    expect(other.id).toBe('cached-2');
  });

  it('refuses an invalid definition every time (a failure is never remembered)', () => {
    const bad = { id: 'cached-bad', steps: [t('a', '{{steps.nope.output}}')] };
    expect(() => validateDefinitionCached(bad)).toThrow(DefinitionError);
    expect(() => validateDefinitionCached(bad)).toThrow(DefinitionError);
  });

  it('keys by the step limit too: a definition valid under one limit is refused under a lower one', () => {
    const doc = { id: 'cached-limit', steps: [t('a'), t('b'), t('c')] };
    expect(validateDefinitionCached(doc, { maxSteps: 3 }).steps).toHaveLength(3);
    expect(() => validateDefinitionCached(doc, { maxSteps: 2 })).toThrow(DefinitionError);
  });
});
