/** The machine's context with its step maps as plain objects, for assertions. */
import { stepMapToObject, type ErrorInfo, type WorkflowContext } from '../../machines/index.js';

export interface PlainContext extends Omit<WorkflowContext, 'outputs' | 'attempts' | 'errors' | 'signals'> {
  outputs: Record<string, any>;
  attempts: Record<string, number>;
  errors: Record<string, ErrorInfo>;
  signals: Record<string, unknown>;
}

export function plainContext(ctx: WorkflowContext): PlainContext {
  return { ...ctx, outputs: stepMapToObject(ctx.outputs), attempts: stepMapToObject(ctx.attempts), errors: stepMapToObject(ctx.errors), signals: stepMapToObject(ctx.signals) };
}
