import Router from '@koa/router';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { formatIssuePath, validate, validateRequest } from '../../../src/edge/middleware/validate.js';

describe('formatIssuePath', () => {
  it.each([
    ['body', [], 'body'],
    ['body', ['workflowId'], 'body.workflowId'],
    ['body', ['steps', 0, 'id'], 'body.steps[0].id'],
    ['query', ['status'], 'query.status'],
    ['params', ['id'], 'params.id'],
  ] as const)('%s %j → %s', (part, path, expected) => {
    expect(formatIssuePath(part, path)).toBe(expected);
  });
});

describe('validate typing (checked by tsc)', () => {
  it('gives routes the schema output types', () => {
    const Body = z.object({ workflowId: z.string(), input: z.record(z.string(), z.unknown()).default({}) });
    const Query = z.object({ limit: z.coerce.number().default(10) });
    const router = new Router();
    router.post('/a', validate({ body: Body }), (ctx) => {
      expectTypeOf(ctx.state.validated.body).toEqualTypeOf<{ workflowId: string; input: Record<string, unknown> }>();
    });
    router.get('/b', (ctx) => {
      const { query } = validateRequest(ctx, { query: Query });
      expectTypeOf(query.limit).toEqualTypeOf<number>();
    });
    expect(router.stack.map((l) => l.path)).toEqual(['/a', '/b']);
  });
});
