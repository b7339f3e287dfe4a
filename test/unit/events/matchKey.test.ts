/**
 * The dispatcher's pre-filter for `event.<path> = <value>` matches: which
 * expressions have that shape, and that it never turns away an event the
 * whole expression accepts (checked against JSONata itself on many pairs).
 */
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../../src/events/expressions.js';
import { equalityOf, keyAt, primitiveKey } from '../../../src/events/matchKey.js';

describe('equalityOf', () => {
  it('finds event.<path> = <an expression of the wait’s values>, either way round', () => {
    expect(equalityOf('event.orderId = steps.order.output.orderId')).toEqual({ eventPath: ['orderId'], other: '{% steps.order.output.orderId %}' });
    expect(equalityOf(' input.n=event.a.b ')).toEqual({ eventPath: ['a', 'b'], other: '{% input.n %}' });
    expect(equalityOf('event.n = $string(input.x)')).toEqual({ eventPath: ['n'], other: '{% $string(input.x) %}' });
  });

  it('leaves every other shape to the whole expression', () => {
    for (const body of ['event.n = input.n and true', 'event[0].n = input.n', 'event.n = $.input.n', 'event.n = event.m', 'event.n != input.n', 'event = input', 'subject = input.s', 'event.n = headers.x', 'event.n.$string() = input.n', '(']) {
      expect(equalityOf(body), body).toBeUndefined();
    }
  });
});

describe('the pre-filter', () => {
  const values: unknown[] = [1, 1.5, 0, '1', 'a', '', true, false, null, [1], { n: 1 }, undefined];
  it('never turns away an event whose match is true', async () => {
    const body = 'event.n = input.n';
    const shape = equalityOf(body)!;
    for (const mine of values) {
      const input = mine === undefined ? {} : { n: mine };
      const key = primitiveKey(await evaluate(shape.other, { input }, 'x'));
      for (const theirs of values) {
        const event = theirs === undefined ? {} : { n: theirs };
        const matches = (await evaluate(`{% ${body} %}`, { input, event }, 'x')) === true;
        const there = keyAt(event, shape.eventPath);
        const turnedAway = key !== undefined && there !== undefined && there !== key;
        expect(matches && turnedAway, `${JSON.stringify(mine)} vs ${JSON.stringify(theirs)}`).toBe(false);
      }
    }
  });

  it('reads only plain objects along the path', () => {
    expect(keyAt({ a: { b: 'x' } }, ['a', 'b'])).toBe('"x"');
    expect(keyAt({ a: [{ b: 1 }] }, ['a', 'b'])).toBeUndefined();
    expect(keyAt('text', ['a'])).toBeUndefined();
    expect(keyAt({ a: { b: 1 } }, ['a'])).toBeUndefined();
  });
});
