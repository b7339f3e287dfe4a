/**
 * The control subject of a hosted execution (core NATS request/reply). Its
 * host answers pings, cancels and signals; "no responders" means no live
 * process hosts it, so it may be taken over from its log.
 */
import { errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { controlSubject } from '../nats/names.js';
import type { Principal } from '../auth/principal.js';
import type { WorkflowEvent } from '../../machines/events.js';

export type ControlRequest =
  | { op: 'ping' }
  | { op: 'cancel'; reason?: string; principal?: Principal }
  | { op: 'signal'; name: string; payload: unknown; principal?: Principal }
  | { op: 'timer'; stepId: string; attempt: number; at: string }
  /** A child execution ended: the record its parent's step takes (src/worker/children.ts). */
  | { op: 'child'; event: WorkflowEvent }
  | { op: 'wake'; holder: string };
export type ControlReply = { ok: true; owner: string } | { ok: false; owner: string; error: { code: string; message: string } };

export function isNoResponders(err: unknown): boolean {
  return err instanceof natsErrors.NoRespondersError || (err as { cause?: unknown })?.cause instanceof natsErrors.NoRespondersError;
}

/** A ping unanswered this long is asked again (see pingOwner). */
const PING_AGAIN_MS = 50;

/**
 * The live owner of an execution, or undefined when nobody hosts it. A ping that reaches the server
 * just before a host's unsubscribe (it let go of the execution that moment: a resume sent as its end
 * was seen) is routed to that host and dropped there, and would wait out its whole timeout; so an
 * unanswered ping is sent again, and the first decisive answer counts: a reply, or "no responders"
 * (nobody subscribed, so nobody hosts it). A host still answering the first holds the second too.
 */
export async function pingOwner(nc: NatsConnection, executionId: string): Promise<string | undefined> {
  const ask = async (): Promise<string | undefined> => {
    try {
      const reply = await nc.request(controlSubject(executionId), JSON.stringify({ op: 'ping' } satisfies ControlRequest), { timeout: 2000 });
      const answer = reply.json() as ControlReply;
      return answer.ok ? answer.owner : undefined; // a host letting go (NOT_HOSTED) is no owner
    } catch (err) {
      if (isNoResponders(err) || err instanceof natsErrors.TimeoutError) return undefined;
      throw err;
    }
  };
  const first = ask();
  let timer: NodeJS.Timeout | undefined;
  const again = new Promise<string | undefined>((resolve, reject) => {
    timer = setTimeout(() => ask().then(resolve, reject), PING_AGAIN_MS);
  });
  try {
    return await Promise.race([first, again]);
  } finally {
    clearTimeout(timer);
    first.catch(() => undefined);
    again.catch(() => undefined);
  }
}

/** Every live host of an execution other than `self` (all responders within a short wait). */
export async function otherOwners(nc: NatsConnection, executionId: string, self: string): Promise<string[]> {
  const owners: string[] = [];
  try {
    const replies = await nc.requestMany(controlSubject(executionId), JSON.stringify({ op: 'ping' } satisfies ControlRequest), { strategy: 'timer', maxWait: 150 });
    for await (const m of replies) {
      const answer = m.json<ControlReply>();
      if (answer.ok && answer.owner !== self) owners.push(answer.owner);
    }
  } catch (err) {
    if (!isNoResponders(err)) throw err;
  }
  return owners;
}
