/**
 * The execution routes. Writes are commands published to SMARTSPEC_COMMANDS
 * (answered 202 without waiting for the run); the edge refuses what it can
 * already see is wrong (unknown id, nothing to resume, no step awaiting the
 * signal) so the client gets a precise 4xx instead of a silent no-op. Reads
 * come from the event log and the execution index.
 */
import { walkSteps } from '../../../machines/blocks.js';
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import Router from '@koa/router';
import type { Context } from 'koa';
import { isTerminal, statusOf, stepMapHas } from '../../../machines/index.js';
import type { Definition } from '../../../machines/definition.js';
import { validateDefinitionCached } from '../../definition/validate.js';
import { DefinitionError, ExecutionExistsError, ExecutionNotFoundError, ExecutionOwnedError, InvalidExecutionStateError } from '../../errors.js';
import { checkpointSeqOf, listCheckpoints, loadExecution, loadForResume, summarize } from '../../log/views.js';
import { pingOwner } from '../../worker/control.js';
import { planResumeWithChildren } from '../../worker/resumeItems.js';
import { validateRequest } from '../middleware/validate.js';
import { callerOf } from '../middleware/authentication.js';
import { TenantLimitError } from '../../auth/errors.js';
import { Tenancy, tenantForRead } from '../../auth/tenancy.js';
import type { RouteDeps } from './deps.js';
import { cancelExecutionBody, executionIdParams, fromQuery, listExecutionsQuery, resumeExecutionBody, signalParams, startExecutionBody } from '../../contracts/http.js';
import { payloadLimitsFromEnv } from '../../payloads/config.js';
import { assertNesting } from '../../payloads/refs.js';
import { PayloadStore } from '../../payloads/store.js';

const TERMINAL_RECORDS = new Set(['ExecutionCompleted', 'ExecutionFailed', 'ExecutionCancelled']);
const SSE_HEARTBEAT_MS = 15_000;

export function executionsRouter(deps: RouteDeps): Router {
  const { log, bus, index, workflows, idempotency, nc, tenantMaxRunning = 10_000 } = deps;
  const payloads = deps.payloads ?? new PayloadStore(nc, { limits: payloadLimitsFromEnv() });
  const router = new Router();
  const tenancy = new Tenancy(log, index);

  const checkNesting = (value: unknown, what: string) => assertNesting(value, payloads.limits.maxNesting, what);

  /** The execution id of the path, once the caller may see it: another tenant's is a 404. */
  const idOf = async (ctx: Context) => {
    const { id } = validateRequest(ctx, { params: executionIdParams }).params;
    await tenancy.assertVisible(callerOf(ctx), id);
    return id;
  };

  /** The execution's log, or a 404; a submitted execution not yet started has an index entry only. */
  async function load(ctx: Context) {
    return loadExecution(log, await idOf(ctx));
  }

  router.post('/executions', async (ctx) => {
    const { body } = validateRequest(ctx, { body: startExecutionBody });
    checkNesting(body.definition, 'definition');
    checkNesting(body.input, 'input');
    const { principal } = callerOf(ctx);
    const tenant = principal.tenant;
    let definition: Definition;
    if (body.definition) {
      try {
        definition = validateDefinitionCached(body.definition);
      } catch (err) {
        if (err instanceof DefinitionError) throw new DefinitionError(err.issues.map((i) => ({ ...i, path: `definition.${i.path}` })));
        throw err;
      }
    } else {
      definition = (await workflows.runnable(body.workflowId!, body.version, tenant)).definition; // a disabled workflow: 409
    }
    // Before claiming an idempotency key: a refused submission must not hold the key.
    if (tenantMaxRunning > 0 && index.activeCount(tenant) >= tenantMaxRunning) throw new TenantLimitError(tenant, tenantMaxRunning);
    let executionId = body.executionId ?? randomUUID();
    const key = ctx.get('Idempotency-Key');
    let replayed = false;
    if (key) {
      const claim = await idempotency.claim(key, executionId, tenant);
      executionId = claim.executionId;
      replayed = !claim.fresh;
      const earlier = replayed ? await index.get(executionId) : undefined;
      // The earlier submission got as far as starting it: answer with that execution.
      if (replayed && (await log.last(executionId))) {
        ctx.set('Idempotent-Replayed', 'true');
        ctx.status = 202;
        ctx.set('Location', `/executions/${executionId}`);
        ctx.body = { executionId, status: earlier?.status ?? 'PENDING', workflowId: earlier?.workflowId ?? definition.id };
        return;
      }
      // Otherwise it may have failed after claiming the key: publish the start again (its message
      // id makes a second copy a no-op; a worker that started it meanwhile ignores the repeat).
    }
    const now = new Date().toISOString();
    const entry = { executionId, workflowId: definition.id, status: 'PENDING' as const, createdAt: now, updatedAt: now, tenant };
    // The PENDING entry is written before the command (a worker's RUNNING is a compare-and-set over
    // it), and only where none exists: with the log's check alongside, the existence check costs no
    // request of its own. A replayed submission keeps the entry it made, if any.
    let fresh: boolean;
    if (replayed) {
      fresh = await index.create(entry);
    } else {
      const [created, logged] = await Promise.all([index.create(entry), body.executionId ? log.last(executionId) : null]);
      if (!created) throw new ExecutionExistsError(executionId);
      if (logged) {
        await index.remove(executionId).catch(() => undefined); // logged without an entry: the one just made goes
        throw new ExecutionExistsError(executionId);
      }
      fresh = true;
    }
    try {
      // A large input is stored first and the command carries a ref; a command NATS would refuse is
      // refused here (413), and the entry goes, as no worker would ever move it on. A stored
      // input whose command is then refused stays in the bucket, unreferenced (it is named after the
      // execution, and content-addressed: another submission may refer to the same object).
      const input = await payloads.prepare(executionId, body.input ?? {}, { what: 'input' });
      const command = { executionId, definition, input, ...(body.budget ? { budget: body.budget } : {}), principal };
      await bus.publish('start', command, `start:${executionId}`, bus.encode('start', command));
    } catch (err) {
      // Not published: no worker will ever start it, so no PENDING entry may stay behind.
      if (fresh) await index.remove(executionId).catch(() => undefined);
      throw err;
    }
    if (replayed) ctx.set('Idempotent-Replayed', 'true');
    ctx.status = 202;
    ctx.set('Location', `/executions/${executionId}`);
    ctx.body = { executionId, status: 'PENDING', workflowId: definition.id };
  });

  router.get('/executions', async (ctx) => {
    const { query } = validateRequest(ctx, { query: listExecutionsQuery });
    const caller = callerOf(ctx);
    // An admin without ?tenant= sees every tenant's; everyone else only their own.
    const tenant = query.tenant === undefined && caller.scopes.has('admin') ? undefined : tenantForRead(caller, query.tenant);
    await index.watch();
    ctx.body = { executions: index.list({ ...query, tenant }) };
  });

  router.get('/executions/:id', async (ctx) => {
    const id = await idOf(ctx);
    try {
      // Values kept by reference are read back: the client sees outputs, never refs.
      ctx.body = await payloads.resolveDeep(summarize(await loadExecution(log, id)));
    } catch (err) {
      const pending = err instanceof ExecutionNotFoundError ? await index.get(id) : undefined;
      if (!pending) throw err;
      ctx.body = { executionId: id, workflowId: pending.workflowId, status: pending.status, createdAt: pending.createdAt };
    }
  });

  router.get('/executions/:id/events', async (ctx) => {
    const id = await idOf(ctx);
    const { query } = validateRequest(ctx, { query: fromQuery });
    const records = await log.read(id, query.from);
    if (records.length === 0 && !(await log.last(id)) && !(await index.get(id))) throw new ExecutionNotFoundError(id);
    ctx.body = { executionId: id, events: records.map((r) => ({ seq: r.seq, ...r.record })) };
  });

  router.get('/executions/:id/events/stream', async (ctx) => {
    const id = await idOf(ctx);
    const { query } = validateRequest(ctx, { query: fromQuery });
    const lastEventId = Number(ctx.get('Last-Event-ID'));
    const from = Number.isInteger(lastEventId) && lastEventId > 0 ? lastEventId + 1 : query.from;
    const last = await log.last(id);
    if (!last && !(await index.get(id))) throw new ExecutionNotFoundError(id);
    const lastAtConnect = last?.seq ?? 0;
    // Already ended and the client has seen the end (an EventSource reconnecting): nothing more will come.
    const endedBefore = last !== null && TERMINAL_RECORDS.has(last.record.type) && from > last.seq;

    const stream = new PassThrough();
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    ctx.status = 200;
    ctx.body = stream;
    stream.write('retry: 2000\n\n'); // sends the headers now: the client sees the stream open
    if (endedBefore) {
      stream.end('event: end\ndata: {}\n\n');
      return;
    }

    // The client going away at any point, even before this line, ends the read (and frees its consumer).
    const abort = new AbortController();
    const gone = () => abort.abort();
    ctx.res.once('close', gone);
    if (ctx.res.destroyed || ctx.req.socket.destroyed) gone();
    const heartbeat = setInterval(() => stream.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
    void (async () => {
      try {
        for await (const { seq, record } of log.follow(id, from, abort.signal)) {
          stream.write(`id: ${seq}\nevent: ${record.type}\ndata: ${JSON.stringify({ seq, ...record })}\n\n`);
          // The history may hold an earlier end (failed, then resumed): stop at the current one.
          if (TERMINAL_RECORDS.has(record.type) && seq >= lastAtConnect) {
            stream.write('event: end\ndata: {}\n\n');
            break;
          }
        }
      } catch {
        // client gone or NATS closed: end the stream
      } finally {
        clearInterval(heartbeat);
        ctx.res.off('close', gone);
        abort.abort();
        stream.end();
      }
    })();
  });

  router.get('/executions/:id/checkpoints', async (ctx) => {
    const loaded = await load(ctx);
    ctx.body = { executionId: loaded.executionId, checkpoints: listCheckpoints(loaded.records) };
  });

  router.post('/executions/:id/resume', async (ctx) => {
    const id = await idOf(ctx);
    const { body } = validateRequest(ctx, { body: resumeExecutionBody.optional() });
    checkNesting(body?.steps, 'steps');
    const req = body ?? {};
    const [owner, loaded] = await Promise.all([pingOwner(nc, id), loadForResume(log, deps.snapshots, id, checkpointSeqOf(req.checkpointId))]);
    if (owner) throw new ExecutionOwnedError(id, owner);
    await planResumeWithChildren(log, loaded, req); // refuses now what the worker would refuse later
    await bus.publish('resume', { executionId: id, ...req, principal: callerOf(ctx).principal }, `resume:${id}:${loaded.fold.lastSeq}`);
    ctx.status = 202;
    // The records after lastSeq are the resumed run's: a client waits for the end after it.
    ctx.body = { executionId: id, status: 'RUNNING', lastSeq: loaded.fold.lastSeq };
  });

  router.post('/executions/:id/cancel', async (ctx) => {
    const id = await idOf(ctx);
    const { body } = validateRequest(ctx, { body: cancelExecutionBody.optional() });
    const loaded = await load(ctx);
    const status = statusOf(loaded.fold.snapshot);
    if (isTerminal(status)) throw new InvalidExecutionStateError(`execution '${id}' is ${status} and cannot be cancelled`, { status });
    await bus.publish('cancel', { executionId: id, ...(body?.reason ? { reason: body.reason } : {}), principal: callerOf(ctx).principal }, `cancel:${id}:${loaded.fold.lastSeq}`);
    ctx.status = 202;
    ctx.body = { executionId: id, cancelling: true };
  });

  router.post('/executions/:id/signals/:name', async (ctx) => {
    const id = await idOf(ctx);
    const { name } = validateRequest(ctx, { params: signalParams }).params;
    const loaded = await load(ctx);
    const snap = loaded.fold.snapshot;
    const status = statusOf(snap);
    if (isTerminal(status)) throw new InvalidExecutionStateError(`execution '${id}' is ${status}: it takes no signals`, { status });
    const step = [...walkSteps(snap.context.definition.steps)].map((v) => v.step).find((s) => s.type === 'signal' && (s.name ?? s.id) === name);
    if (!step) throw new InvalidExecutionStateError(`no step of execution '${id}' awaits signal '${name}'`, { signal: name });
    if (stepMapHas(snap.context.outputs, step.id) || stepMapHas(snap.context.signals, name)) {
      throw new InvalidExecutionStateError(`signal '${name}' was already delivered to execution '${id}'`, { signal: name });
    }
    checkNesting(ctx.request.body, `the payload of signal '${name}'`);
    const payload = await payloads.prepare(id, ctx.request.body ?? {}, { what: `the payload of signal '${name}'` });
    await bus.publish('signal', { executionId: id, name, payload, principal: callerOf(ctx).principal }, `signal:${id}:${name}:${loaded.fold.lastSeq}`);
    ctx.status = 202;
    ctx.body = { executionId: id, signal: name, stepId: step.id };
  });

  return router;
}
