/**
 * Purging an execution's large payloads from the object store bucket
 * `smartspec_payloads` (objects named `<executionId>/…`), through the bucket's
 * stream so that no object-store client is needed. A bucket that was never
 * created (no execution carried a large value) has nothing to purge.
 *
 * An object store bucket B is stream OBJ_B: one meta message per object on
 * `$O.B.M.<encoded name>` (JSON with `name` and `nuid`), its chunks on
 * `$O.B.C.<nuid>`.
 */
import { JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';

export const PAYLOADS_BUCKET = 'smartspec_payloads';
const STREAM_NOT_FOUND = 10059;

interface StoredObject { metaSubject: string; nuid?: string }

export class ObjectPurger {
  /** Objects by execution id, read once per purge pass (on first use). */
  private objects?: Promise<Map<string, StoredObject[]>>;

  constructor(private readonly jsm: JetStreamManager, private readonly bucket = PAYLOADS_BUCKET) {}

  private get stream() { return `OBJ_${this.bucket}`; }

  /** Delete every object whose name starts with `<executionId>/`; returns how many. */
  async purge(executionId: string): Promise<number> {
    const found = (await (this.objects ??= this.list())).get(executionId) ?? [];
    for (const o of found) {
      if (o.nuid) await this.jsm.streams.purge(this.stream, { filter: `$O.${this.bucket}.C.${o.nuid}` });
      await this.jsm.streams.purge(this.stream, { filter: o.metaSubject });
    }
    return found.length;
  }

  private async list(): Promise<Map<string, StoredObject[]>> {
    const byExecution = new Map<string, StoredObject[]>();
    let subjects: string[];
    try {
      const info = await this.jsm.streams.info(this.stream, { subjects_filter: `$O.${this.bucket}.M.>` });
      subjects = Object.keys(info.state.subjects ?? {});
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) return byExecution;
      throw err;
    }
    for (const metaSubject of subjects) {
      const m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: metaSubject }).catch(() => null);
      const meta = m?.json<{ name?: string; nuid?: string }>();
      const slash = meta?.name?.indexOf('/') ?? -1;
      if (!meta?.name || slash <= 0) continue;
      const id = meta.name.slice(0, slash);
      byExecution.set(id, [...(byExecution.get(id) ?? []), { metaSubject, nuid: meta.nuid }]);
    }
    return byExecution;
  }
}
