/**
 * Fan-out: a `map` over ITEMS items, one transform each, maxConcurrency 64,
 * at full durability. Its block is pure (transforms only), so the items run
 * inline in the parent's worker: up to 64 items' outputs to a record of the
 * parent's log, each appended and acknowledged (a block with an llm, http or
 * other waiting step would run each item as a child execution, with four
 * records of its own and its start and result in the parent's; not measured
 * here). Against the same fan-out in
 * LangGraph.js: a `Send` per item to a worker node whose results a reducer
 * gathers (map-reduce), on its SQLite checkpointer, maxConcurrency 64. One
 * whole map per sample for each, alternating which goes first.
 */
import { join } from 'node:path';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Engine } from '../../src/worker/engine.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { importPeer, peerVersion } from '../lib/peers.js';
import { defineSection } from '../lib/section.js';

const ITEMS = 1000;
const CONCURRENCY = 64;

const MAP = validateDefinition({
  id: 'bench-map',
  steps: [{ id: 'each', type: 'map', items: '{{input.items}}', maxConcurrency: CONCURRENCY, steps: [{ id: 'double', type: 'transform', value: '{% item * 2 %}' }] }],
});

export default defineSection({
  name: 'map',
  title: `Map: ${ITEMS} items, one transform each, maxConcurrency ${CONCURRENCY} (engine: a pure block, items inline; LangGraph: Send map-reduce + SQLite)`,
  figures: [
    { key: 'engine.itemsPerSec', label: 'engine map', unit: 'items/s', better: 'higher' },
    { key: 'langgraph.itemsPerSec', label: 'LangGraph Send map-reduce', unit: 'items/s', better: 'higher' },
  ],
  ratios: [{ key: 'engineOverLanggraph', label: 'engine ÷ LangGraph, items/s (≥ 3 is the target)', numerator: 'engine.itemsPerSec', denominator: 'langgraph.itemsPerSec' }],
  async setup(ctx) {
    process.env.LANGSMITH_TRACING = 'false';
    process.env.LANGCHAIN_TRACING_V2 = 'false';
    const { StateGraph, Annotation, Send, START, END } = await importPeer('@langchain/langgraph', () => import('@langchain/langgraph'));
    const { SqliteSaver } = await importPeer('@langchain/langgraph-checkpoint-sqlite', () => import('@langchain/langgraph-checkpoint-sqlite'));
    const count = ctx.count(ITEMS);
    const items = Array.from({ length: count }, (_, i) => i);
    const expected = items.map((i) => i * 2);

    const nc = await connectNats(ctx.natsUrl, 'bench-map');
    const log = await EventLog.open(nc);
    const engine = await Engine.create({ nc, log });
    let maps = 0;
    const engineMap = async (): Promise<number> => {
      const t = performance.now();
      const runner = await engine.start({ definition: MAP, input: { items }, executionId: `map-${process.pid}-${maps++}` });
      const { status, snapshot } = await runner.done;
      const seconds = (performance.now() - t) / 1000;
      if (status !== 'COMPLETED') throw new Error(`the map ended ${status}`);
      if (JSON.stringify(snapshot.context.output) !== JSON.stringify(expected)) throw new Error('the map gave other outputs');
      return count / seconds;
    };

    const State = Annotation.Root({
      items: Annotation<number[]>(),
      results: Annotation<{ index: number; value: number }[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
    });
    const graph = new StateGraph(State)
      .addNode('double', (s: { item: number; index: number }) => ({ results: [{ index: s.index, value: s.item * 2 }] }))
      .addConditionalEdges(START, (s) => s.items.map((item, index) => new Send('double', { item, index })))
      .addEdge('double', END);
    const saver = SqliteSaver.fromConnString(join(ctx.tmpDir, 'langgraph-map.sqlite'));
    const app = graph.compile({ checkpointer: saver });
    const langgraphMap = async (): Promise<number> => {
      const t = performance.now();
      const out = await app.invoke({ items }, { configurable: { thread_id: `map-${maps++}` }, maxConcurrency: CONCURRENCY });
      const seconds = (performance.now() - t) / 1000;
      const values = [...out.results].sort((a, b) => a.index - b.index).map((r) => r.value);
      if (JSON.stringify(values) !== JSON.stringify(expected)) throw new Error('LangGraph gave other outputs');
      return count / seconds;
    };

    return {
      params: { items: count, maxConcurrency: CONCURRENCY, langgraph: await peerVersion('@langchain/langgraph'), checkpointer: 'SqliteSaver (better-sqlite3, file, WAL)' },
      async measure(run) {
        const engineFirst = run.index % 2 === 0;
        const a = engineFirst ? await engineMap() : await langgraphMap();
        const b = engineFirst ? await langgraphMap() : await engineMap();
        return { 'engine.itemsPerSec': engineFirst ? a : b, 'langgraph.itemsPerSec': engineFirst ? b : a };
      },
      async close() {
        await engine.close();
        await nc.close();
        saver.db.close();
      },
    };
  },
});
