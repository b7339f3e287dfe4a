/**
 * The second edition of definitions (containers and expressions): what is
 * valid keeps its meaning, and every problem anywhere in the tree is reported
 * at once with its path.
 */
import { describe, expect, it } from 'vitest';
import { validateDefinition } from '../../src/definition/validate.js';
import { DefinitionError } from '../../src/errors.js';
import { MAX_NESTING } from '../../machines/definition.js';

type Doc = Record<string, unknown>;
const t = (id: string, value: unknown = 1, extra: Doc = {}) => ({ id, type: 'transform', value, ...extra });

/** Problems of a definition (none: it validates). */
function problems(doc: unknown): { path: string; message: string }[] {
  try {
    validateDefinition(doc);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(DefinitionError);
    return (err as DefinitionError).issues;
  }
}

const triage = {
  id: 'triage',
  steps: [
    t('classify', { category: '{{input.category}}' }),
    {
      id: 'route', type: 'switch',
      cases: [
        { when: "{% steps.classify.output.category = 'billing' %}", steps: [t('refund', 'refund')] },
        { when: "{% steps.classify.output.category = 'bug' %}", steps: [t('ticket', 1), t('notify', '{{steps.ticket.output}}')] },
      ],
      default: [t('noop', null)],
    },
    { id: 'reviews', type: 'parallel', branches: { security: [t('secDraft'), t('secCheck', '{{steps.secDraft.output}}')], perf: [t('bench')] } },
    { id: 'perDoc', type: 'map', items: '{{input.docs}}', maxConcurrency: 4, steps: [t('summarize', { doc: '{{item}}', i: '{{index}}' })] },
    { id: 'agent', type: 'loop', maxIterations: 5, until: '{% steps.think.output.done %}', steps: [t('think', { done: '{% iteration >= 3 %}' })] },
    {
      id: 'deps', type: 'graph', steps: [
        t('ga'), t('gb'), t('gc'),
        t('gd', '{% steps.ga.output + steps.gb.output %}', { needs: ['ga', 'gb'] }),
        t('ge', '{{steps.gd.output}}', { needs: ['gd', 'gc'] }),
      ],
    },
    { id: 'child', type: 'workflow', workflowId: 'summarize', input: { text: '{{steps.route.output}}' } },
  ],
};

describe('valid definitions of the second edition', () => {
  it('the contract example validates, with defaults applied', () => {
    expect(problems(triage)).toEqual([]);
  });

  it('every step type of it runs: map and workflow steps are no longer refused', () => {
    expect(validateDefinition(triage).steps.map((s) => s.type)).toEqual(['transform', 'switch', 'parallel', 'map', 'loop', 'graph', 'workflow']);
  });

  it('top-level parallel groups keep their meaning', () => {
    const def = validateDefinition({ id: 'w', steps: [t('a'), t('b'), t('c'), t('d'), t('e', '{{steps.b.output}}')], parallel: [['b', 'c', 'd']] });
    expect(def.parallel).toEqual([['b', 'c', 'd']]);
  });

  it('containers nest (a parallel inside a map inside a loop)', () => {
    const doc = {
      id: 'w',
      steps: [{
        id: 'l', type: 'loop', maxIterations: 2, steps: [{
          id: 'm', type: 'map', items: '{% [1,2,3] %}', steps: [{ id: 'p', type: 'parallel', branches: { x: [t('x1', '{{item}}')], y: [t('y1', '{{iteration}}')] } }],
        }],
      }],
    };
    expect(problems(doc)).toEqual([]);
  });
});

describe('problems anywhere in the tree, all at once, with paths', () => {
  it('a duplicate id deep inside names both places', () => {
    const doc = { id: 'w', steps: [t('a'), t('x'), t('b'), { id: 's', type: 'switch', cases: [{ when: '{{input.a}}', steps: [] }, { when: '{{input.b}}', steps: [t('x')] }] }] };
    expect(problems(doc)).toEqual([{ path: 'steps[3].cases[1].steps[0].id', message: "duplicate step id 'x' (also steps[1])" }]);
  });

  it('several problems of different kinds in one pass', () => {
    const doc = {
      id: 'w',
      steps: [
        t('a'),
        { id: 'a', type: 'map', items: '{{input.list}}', steps: [{ id: 'q', type: 'nope' }] },
        { id: 'l', type: 'loop', steps: [t('b')] },
      ],
    };
    const found = problems(doc);
    const paths = found.map((p) => p.path);
    expect(paths).toContain('steps[1].id');
    expect(paths).toContain('steps[1].steps[0].type');
    expect(paths).toContain('steps[2].maxIterations');
    expect(found.find((p) => p.path === 'steps[2].maxIterations')!.message).toMatch(/a loop needs maxIterations/);
  });

  it('a needs naming a step outside its graph', () => {
    const doc = { id: 'w', steps: [t('a'), { id: 'g', type: 'graph', steps: [t('b'), t('c', 1, { needs: ['a'] })] }] };
    expect(problems(doc)).toEqual([{ path: 'steps[1].steps[1].needs[0]', message: "'a' is not a step of graph 'g' (b, c)" }]);
  });

  it('needs outside a graph', () => {
    expect(problems({ id: 'w', steps: [t('a'), t('b', 1, { needs: ['a'] })] })).toEqual([{ path: 'steps[1].needs', message: "'needs' is only for the steps of a graph" }]);
  });

  it('a cycle in a graph is named', () => {
    const doc = { id: 'w', steps: [{ id: 'g', type: 'graph', steps: [t('a', 1, { needs: ['c'] }), t('b', 1, { needs: ['a'] }), t('c', 1, { needs: ['b'] }), t('d')] }] };
    const found = problems(doc);
    expect(found).toHaveLength(1);
    expect(found[0].path).toMatch(/^steps\[0\]\.steps\[\d\]\.needs$/);
    expect(found[0].message).toMatch(/cycle in graph 'g': (a needs c needs b needs a|b needs a needs c needs b|c needs b needs a needs c)/);
  });

  it('a step needing itself is a cycle', () => {
    const found = problems({ id: 'w', steps: [{ id: 'g', type: 'graph', steps: [t('a', 1, { needs: ['a'] })] }] });
    expect(found).toEqual([{ path: 'steps[0].steps[0].needs', message: "cycle in graph 'g': a needs a" }]);
  });

  it('nesting past the documented limit', () => {
    let inner: Doc = t('leaf');
    for (let i = 0; i <= MAX_NESTING; i++) inner = { id: `l${i}`, type: 'loop', maxIterations: 1, steps: [inner] };
    const found = problems({ id: 'w', steps: [inner] });
    expect(found).toHaveLength(1);
    expect(found[0].message).toMatch(new RegExp(`nest deeper than ${MAX_NESTING} levels`));
    expect(found[0].path).toBe(`steps[0]${'.steps[0]'.repeat(MAX_NESTING)}`);
  });

  it('a map items that is neither a template nor an expression', () => {
    const found = problems({ id: 'w', steps: [{ id: 'm', type: 'map', items: 'docs', steps: [t('a')] }] });
    expect(found).toEqual([{ path: 'steps[0].items', message: 'must be a single {{…}} template or a {% … %} expression' }]);
  });

  it('an empty parallel, a switch without cases', () => {
    const found = problems({ id: 'w', steps: [{ id: 'p', type: 'parallel', branches: {} }, { id: 's', type: 'switch', cases: [] }] });
    expect(found.map((f) => f.path).sort()).toEqual(['steps[0].branches', 'steps[1].cases']);
  });

  it('a branch name that is not a name', () => {
    const found = problems({ id: 'w', steps: [{ id: 'p', type: 'parallel', branches: { 'no way': [t('a')] } }] });
    expect(found.map((f) => f.path)).toEqual(['steps[0].branches.no way']);
  });

  it('a group naming a step inside a container', () => {
    const found = problems({ id: 'w', steps: [t('a'), { id: 'p', type: 'parallel', branches: { x: [t('b')] } }], parallel: [['b']] });
    expect(found).toEqual([{ path: 'parallel[0][0]', message: "step 'b' is inside a container (steps[1].branches.x[0]): groups are of top-level steps (use a parallel step inside)" }]);
  });
});

describe('references: only steps certain to have run', () => {
  const ref = (doc: unknown) => problems(doc).map((p) => `${p.path}: ${p.message}`);

  it('a sibling branch of a parallel is not certain to have run', () => {
    const doc = { id: 'w', steps: [{ id: 'p', type: 'parallel', branches: { x: [t('a')], y: [t('b', '{{steps.a.output}}')] } }] };
    expect(ref(doc)).toEqual(["steps[0].branches.y[0].value: {{steps.a.output}} refers to step 'a', which does not run before 'b' (or is not certain to have run by then)"]);
  });

  it('inner steps of a container are not visible after it (only its output)', () => {
    const doc = { id: 'w', steps: [{ id: 'm', type: 'map', items: '{{input.xs}}', steps: [t('a')] }, t('b', '{{steps.a.output}}'), t('c', '{{steps.m.output}}')] };
    expect(ref(doc)).toEqual(["steps[1].value: {{steps.a.output}} refers to step 'a', which does not run before 'b' (or is not certain to have run by then)"]);
  });

  it('a step of another switch case', () => {
    const doc = { id: 'w', steps: [{ id: 's', type: 'switch', cases: [{ when: '{{input.a}}', steps: [t('a')] }], default: [t('b', '{% steps.a.output %}')] }] };
    expect(ref(doc)).toEqual(["steps[0].default[0].value: steps.a refers to step 'a', which does not run before 'b' (or is not certain to have run by then)"]);
  });

  it('in a graph, only what a step needs (directly or not)', () => {
    const doc = { id: 'w', steps: [{ id: 'g', type: 'graph', steps: [t('a'), t('b', 1, { needs: ['a'] }), t('c', '{{steps.a.output}}', { needs: ['b'] }), t('d', '{{steps.b.output}}')] }] };
    expect(ref(doc)).toEqual(["steps[0].steps[3].value: {{steps.b.output}} refers to step 'b', which does not run before 'd' (or is not certain to have run by then)"]);
  });

  it("a loop's until may read the loop's steps; the loop's steps may read earlier ones of the iteration only", () => {
    const ok = { id: 'w', steps: [{ id: 'l', type: 'loop', maxIterations: 3, until: '{% steps.b.output > 2 %}', steps: [t('a', '{{iteration}}'), t('b', '{{steps.a.output}}')] }] };
    expect(ref(ok)).toEqual([]);
    const bad = { id: 'w', steps: [{ id: 'l', type: 'loop', maxIterations: 3, steps: [t('a', '{{steps.b.output}}'), t('b')] }] };
    expect(ref(bad)).toEqual(["steps[0].steps[0].value: {{steps.b.output}} refers to step 'b', which does not run before 'a' (or is not certain to have run by then)"]);
  });

  it('item and index only inside a map, iteration only inside a loop', () => {
    const doc = { id: 'w', steps: [t('a', '{{item}}'), t('b', '{{iteration}}')] };
    expect(ref(doc)).toEqual(["steps[0].value: {{item}}: 'item' exists only inside a map", "steps[1].value: {{iteration}}: 'iteration' exists only inside a loop"]);
  });

  it('an expression that does not parse, with its position', () => {
    const doc = { id: 'w', steps: [t('a'), { id: 's', type: 'switch', cases: [{ when: '{% steps.a.output = %}', steps: [t('b')] }] }] };
    const found = ref(doc);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^steps\[1\]\.cases\[0\]\.when: \{% … %\} does not parse at position \d+: /);
  });

  it('an expression reading steps without naming one', () => {
    expect(ref({ id: 'w', steps: [t('a'), t('b', '{% $count(steps.*) %}')] })).toEqual(['steps[1].value: an expression must name each step it reads (steps.<id>…), so that it can be checked to have run']);
  });

  it('an expression inside a longer string would stay text: refused', () => {
    expect(ref({ id: 'w', steps: [t('a', 'total: {% 1 + 1 %}')] })).toEqual(["steps[0].value: an expression must be the whole string ('{% … %}'): 'total: {% 1 + 1 %}' would stay text"]);
  });

  it('a template inside a container naming an unknown step', () => {
    expect(ref({ id: 'w', steps: [{ id: 'p', type: 'parallel', branches: { x: [t('a', { v: ['{{steps.zz.output}}'] })] } }] })).toEqual(["steps[0].branches.x[0].value.v.0: {{steps.zz.output}} refers to unknown step 'zz'"]);
  });

  it('accepts a loop inside another loop (any depth)', () => {
    const inner = { id: 'i', type: 'loop', maxIterations: 2, steps: [{ id: 'a', type: 'transform', value: 1 }] };
    expect(() => validateDefinition({ id: 'w', steps: [{ id: 'o', type: 'loop', maxIterations: 2, steps: [{ id: 'p', type: 'parallel', branches: { x: [inner] } }] }] })).not.toThrow();
  });
});
