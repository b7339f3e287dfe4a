import { describe, expect, it } from 'vitest';
import {
  CheckpointNotFoundError,
  ConcurrencyError,
  DefinitionError,
  ExecutionNotFoundError,
  ExecutionOwnedError,
  InvalidExecutionStateError,
  InvalidInputError,
  NoStepsError,
  SmartSpecError,
  StepNotFoundError,
  TamperedLogError,
  WorkflowNotFoundError,
} from '../../../src/errors.js';
import { RequestValidationError } from '../../../src/edge/errors.js';
import { problemForStatus, statusForCode, toProblem } from '../../../src/edge/problem.js';

describe('statusForCode', () => {
  it.each([
    [new InvalidInputError('x'), 400],
    [new DefinitionError([{ path: 'steps[0]', message: 'x' }]), 422],
    [new RequestValidationError([{ path: 'body.a', message: 'x' }]), 422],
    [new NoStepsError('x'), 422],
    [new ExecutionNotFoundError('e'), 404],
    [new WorkflowNotFoundError('w'), 404],
    [new CheckpointNotFoundError('e', 'c'), 404],
    [new StepNotFoundError('s', 'w'), 404],
    [new InvalidExecutionStateError('x'), 409],
    [new ExecutionOwnedError('e', 'o'), 409],
    [new ConcurrencyError('e', 1), 409],
    [new SmartSpecError('BUDGET_EXCEEDED', 'x'), 409],
    [new SmartSpecError('QUEUE_NOT_FOUND', 'x'), 404],
  ])('%s → %i', (err, status) => {
    expect(statusForCode(err.code)).toBe(status);
    expect(toProblem(err).problem.status).toBe(status);
  });

  it('has no status for internal codes', () => {
    expect(statusForCode('TIMEOUT')).toBeUndefined();
  });
});

describe('toProblem', () => {
  it('renders RFC 9457 members plus code, details as extensions', () => {
    const { problem, internal } = toProblem(new ExecutionNotFoundError('ex-1'), { instance: '/executions/ex-1', requestId: 'r1' });
    expect(internal).toBe(false);
    expect(problem).toEqual({
      type: 'urn:smartspec:problem:execution-not-found',
      title: 'Execution not found',
      status: 404,
      detail: "execution 'ex-1' not found",
      instance: '/executions/ex-1',
      code: 'EXECUTION_NOT_FOUND',
      requestId: 'r1',
      executionId: 'ex-1',
    });
  });

  it('details cannot overwrite the standard members', () => {
    const err = new SmartSpecError('INVALID_INPUT', 'bad', { details: { status: 200, type: 'x', code: 'OK', field: 'a' } });
    expect(toProblem(err).problem).toMatchObject({ status: 400, type: 'urn:smartspec:problem:invalid-input', code: 'INVALID_INPUT', field: 'a' });
  });

  it('unknown errors are a generic 500 (503 if retryable) that leaks nothing', () => {
    for (const err of [new Error('secret 1'), new SmartSpecError('TIMEOUT', 'secret 2', { details: { host: 'secret 3' } }), 'secret 4', null]) {
      const { problem, internal } = toProblem(err);
      expect(internal).toBe(true);
      expect(problem.status).toBe(500);
      expect(JSON.stringify(problem)).not.toContain('secret');
    }
    const retryable = toProblem(new SmartSpecError('NATS_DOWN', 'secret', { retryable: true }));
    expect(retryable.problem).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(JSON.stringify(retryable.problem)).not.toContain('secret');
  });

  it('exposes a tampered log (500) because the client must know the history is not trustworthy', () => {
    const { problem, internal } = toProblem(new TamperedLogError('hash mismatch at seq 7', { seq: 7 }));
    expect(internal).toBe(true);
    expect(problem).toMatchObject({ status: 500, code: 'LOG_TAMPERED', detail: 'hash mismatch at seq 7', seq: 7 });
  });

  it('trusts http-errors only for exposed 4xx messages', () => {
    const exposed = Object.assign(new Error('token expired'), { status: 401, expose: true, headers: { 'WWW-Authenticate': 'Bearer', 'Content-Type': 'text/html' } });
    const hidden = Object.assign(new Error('internal'), { status: 400, expose: false });
    expect(toProblem(exposed)).toMatchObject({ problem: { status: 401, code: 'UNAUTHORIZED', detail: 'token expired' }, headers: { 'WWW-Authenticate': 'Bearer' } });
    expect(toProblem(exposed).headers).not.toHaveProperty('Content-Type');
    expect(toProblem(hidden).problem.detail).toBe('Bad Request');
  });

  it('problemForStatus names 404s NOT_FOUND', () => {
    expect(problemForStatus(404)).toMatchObject({ code: 'NOT_FOUND', title: 'Not Found', type: 'urn:smartspec:problem:not-found' });
  });
});
