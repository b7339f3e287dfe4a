/**
 * The control subject of a hosted execution (core NATS request/reply). Its
 * host answers pings, cancels and signals; "no responders" means no live
 * process hosts it, so it may be taken over from its log.
 */
import { errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { controlSubject } from '../nats/names.js';

export type ControlRequest = { op: 'ping' } | { op: 'cancel'; reason?: string } | { op: 'signal'; name: string; payload: unknown };
export type ControlReply = { ok: true; owner: string } | { ok: false; owner: string; error: { code: string; message: string } };

export function isNoResponders(err: unknown): boolean {
  return err instanceof natsErrors.NoRespondersError || (err as { cause?: unknown })?.cause instanceof natsErrors.NoRespondersError;
}

/** The live owner of an execution, or undefined when nobody hosts it. */
export async function pingOwner(nc: NatsConnection, executionId: string): Promise<string | undefined> {
  try {
    const reply = await nc.request(controlSubject(executionId), JSON.stringify({ op: 'ping' } satisfies ControlRequest), { timeout: 2000 });
    return (reply.json() as ControlReply).owner;
  } catch (err) {
    if (isNoResponders(err) || err instanceof natsErrors.TimeoutError) return undefined;
    throw err;
  }
}
