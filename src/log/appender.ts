/**
 * Pipelined JetStream appends. A JetStream publish is a request/reply: the
 * stream answers a PubAck (or an error) on the reply subject. The client's
 * `js.publish` makes a timer, a deferred and an Error object per request;
 * at the engine's rate that was a measurable share of the CPU, so appends use
 * one reply subscription for all of them (as the Go client's PublishAsync does)
 * and one sweep timer for the time-outs.
 */
import { createInbox, headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { PubHeaders } from '@nats-io/jetstream';

export interface PubAck { seq: number; duplicate: boolean }

/** The stream refused the message (e.g. wrong last subject sequence, code 10071). */
export class PublishRejected extends Error {
  constructor(readonly errCode: number, message: string) {
    super(message);
  }
}
/** No answer in time (or no stream listening): the publish may or may not have been stored. */
export class PublishUnanswered extends Error {}

interface Pending { resolve(ack: PubAck): void; reject(err: Error): void; deadline: number }

export class Appender {
  private readonly prefix = createInbox();
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  private readonly sweep: NodeJS.Timeout;
  private next = 0;

  constructor(private readonly nc: NatsConnection, private readonly timeoutMs = 5000) {
    this.sub = nc.subscribe(`${this.prefix}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const token = msg.subject.slice(this.prefix.length + 1);
        const p = this.pending.get(token);
        if (!p) return;
        this.pending.delete(token);
        if (msg.headers?.code === 503) return p.reject(new PublishUnanswered('no stream is listening on this subject'));
        const body = msg.json<{ seq?: number; duplicate?: boolean; error?: { err_code: number; description: string } }>();
        if (body.error) p.reject(new PublishRejected(body.error.err_code, body.error.description));
        else p.resolve({ seq: body.seq!, duplicate: body.duplicate === true });
      },
    });
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const [token, p] of this.pending) {
        if (p.deadline <= now) {
          this.pending.delete(token);
          p.reject(new PublishUnanswered(`no PubAck within ${this.timeoutMs} ms`));
        }
      }
    }, Math.min(1000, this.timeoutMs));
    this.sweep.unref();
  }

  /** The server's max_payload (headers and body), once connected. */
  get maxPayload(): number | undefined {
    return this.nc.info?.max_payload;
  }

  /** Publish with a message id and the expected last sequence of the subject. */
  publish(subject: string, data: Uint8Array, msgID: string, lastSubjectSequence: number): Promise<PubAck> {
    const h = headers();
    h.set(PubHeaders.MsgIdHdr, msgID);
    h.set(PubHeaders.ExpectedLastSubjectSequenceHdr, String(lastSubjectSequence));
    const token = (this.next++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: Date.now() + this.timeoutMs });
      const send = () => {
        try {
          this.nc.publish(subject, data, { reply: `${this.prefix}.${token}`, headers: h });
        } catch (err) {
          this.pending.delete(token);
          reject(err as Error);
        }
      };
      // Alone in flight: send now (latency). Otherwise gather this turn's publishes into one
      // socket write: each ack wakes one execution, and sent one by one they cost a write each.
      if (this.pending.size === 1) return send();
      this.batch.push(send);
      if (this.batch.length === 1) setImmediate(this.sendBatch);
    });
  }

  private batch: (() => void)[] = [];
  private readonly sendBatch = () => {
    const batch = this.batch;
    this.batch = [];
    for (const send of batch) send();
  };
}
