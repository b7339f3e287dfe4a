/** The execution's log, numbered from 1, with the result of checking its hash chain in the browser. */
import { duration } from '../format.js';
import type { ChainResult } from '../model/chain.js';
import type { EventRecord } from '../model/records.js';
import { Json } from './Json.js';
import { ListTable } from './ListTable.js';

function ChainBanner({ chain }: { chain: ChainResult | null }) {
  if (!chain) return <p class="chain muted">Checking the hash chain…</p>;
  if (chain.status === 'empty') return <p class="chain muted">No records yet.</p>;
  if (chain.status === 'unavailable') return <p class="chain muted">The hash chain was not checked: this browser offers SHA-256 only over https or on localhost.</p>;
  if (chain.status === 'verified') return <p class="chain chain-ok" data-chain="verified">Hash chain verified: all {chain.checked} records link up (SHA-256, recomputed in this browser).</p>;
  return (
    <p class="chain chain-broken" role="alert" data-chain="broken">
      Hash chain BROKEN at {chain.broken.map((s) => `seq ${s}`).join(', ')}: the log was edited, reordered or cut.
    </p>
  );
}

const stepOf = (r: EventRecord) => ('stepId' in r && r.stepId ? r.stepId : r.type === 'SignalReceived' ? `signal ${r.name}` : '');

function detailOf(r: EventRecord): unknown {
  const { seq: _s, executionId: _e, workflowId: _w, at: _a, hash: _h, type: _t, ...rest } = r;
  return rest;
}

export function EventLog({ records, chain }: { records: EventRecord[]; chain: ChainResult | null }) {
  const start = records.length ? Date.parse(records[0].at) : 0;
  const broken = new Set(chain?.broken ?? []);
  return (
    <div class="event-log">
      <ChainBanner chain={chain} />
      <ListTable caption="Event log" columns={['#', 'At', 'Event', 'Step', 'Details', 'Hash']} extraClass="events">
        {records.map((r, i) => (
          <tr key={r.seq} data-type={r.type} class={broken.has(r.seq) ? 'broken' : ''}>
            <td title={`stream sequence ${r.seq}`}>{i + 1}</td>
            <td title={r.at}>+{duration(Date.parse(r.at) - start)}</td>
            <td>{r.type}</td>
            <td>
              {stepOf(r)}
              {'attempt' in r && r.attempt ? ` (attempt ${r.attempt})` : ''}
            </td>
            <td>
              <details>
                <summary>record</summary>
                <Json value={detailOf(r)} />
              </details>
            </td>
            <td>
              <code title={r.hash}>{r.hash.slice(0, 10)}</code> {broken.has(r.seq) ? '✗' : chain?.status === 'verified' ? '✓' : ''}
            </td>
          </tr>
        ))}
      </ListTable>
    </div>
  );
}
