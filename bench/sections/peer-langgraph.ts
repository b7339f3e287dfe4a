/**
 * Section 3, Peer: LangGraph.js with its SQLite checkpointer (a file in the
 * section's temp dir, WAL as the saver sets it) running the fork5 graph:
 * A fans out to B, C, D, which join into E; every node a trivial transform.
 * Each execution is one `invoke` on its own thread_id, so every superstep is
 * checkpointed. Measured one at a time and with 64 in flight (alternating
 * which goes first); per-execution latency is invoke start → result.
 */
import { join } from 'node:path';
import { seqAndConcurrent } from '../lib/load.js';
import { fork5, fork5Expected, importPeer, peerVersion } from '../lib/peers.js';
import { defineSection } from '../lib/section.js';

const SEQUENTIAL = 300;
const CONCURRENT = 640;
const IN_FLIGHT = 64;

export default defineSection({
  name: 'peer-langgraph',
  title: 'Peer: LangGraph.js + SQLite checkpointer, fork5 graph',
  figures: [
    { key: 'seq.executionsPerSec', label: 'one at a time', unit: 'executions/s', better: 'higher' },
    { key: 'seq.p50Ms', label: 'one at a time, p50 latency', unit: 'ms', better: 'lower' },
    { key: 'seq.p99Ms', label: 'one at a time, p99 latency', unit: 'ms', better: 'lower' },
    { key: 'c64.executionsPerSec', label: `${IN_FLIGHT} in flight`, unit: 'executions/s', better: 'higher' },
    { key: 'c64.p50Ms', label: `${IN_FLIGHT} in flight, p50 latency`, unit: 'ms', better: 'lower' },
    { key: 'c64.p99Ms', label: `${IN_FLIGHT} in flight, p99 latency`, unit: 'ms', better: 'lower' },
  ],
  ratios: [
    { key: 'c64OverSeq', label: `${IN_FLIGHT} in flight / one at a time`, numerator: 'c64.executionsPerSec', denominator: 'seq.executionsPerSec' },
  ],
  async setup(ctx) {
    // No tracing callbacks leave the process.
    process.env.LANGSMITH_TRACING = 'false';
    process.env.LANGCHAIN_TRACING_V2 = 'false';
    const { StateGraph, Annotation, START, END } = await importPeer('@langchain/langgraph', () => import('@langchain/langgraph'));
    const { SqliteSaver } = await importPeer('@langchain/langgraph-checkpoint-sqlite', () => import('@langchain/langgraph-checkpoint-sqlite'));

    const State = Annotation.Root({
      input: Annotation<number>(),
      a: Annotation<number>(),
      b: Annotation<number>(),
      c: Annotation<number>(),
      d: Annotation<number>(),
      e: Annotation<number>(),
    });
    const graph = new StateGraph(State)
      .addNode('A', (s) => ({ a: fork5.a(s.input) }))
      .addNode('B', (s) => ({ b: fork5.b(s.a) }))
      .addNode('C', (s) => ({ c: fork5.c(s.a) }))
      .addNode('D', (s) => ({ d: fork5.d(s.a) }))
      .addNode('E', (s) => ({ e: fork5.e(s.b, s.c, s.d) }))
      .addEdge(START, 'A')
      .addEdge('A', 'B')
      .addEdge('A', 'C')
      .addEdge('A', 'D')
      .addEdge(['B', 'C', 'D'], 'E') // join: E waits for all three
      .addEdge('E', END);
    const dbFile = join(ctx.tmpDir, 'langgraph-checkpoints.sqlite');
    const saver = SqliteSaver.fromConnString(dbFile);
    const app = graph.compile({ checkpointer: saver });

    let threads = 0;
    const execute = async (input: number) => {
      const thread_id = `exec-${++threads}`;
      const out = await app.invoke({ input }, { configurable: { thread_id } });
      if (out.e !== fork5Expected(input)) throw new Error(`${thread_id}: E = ${out.e}, expected ${fork5Expected(input)}`);
    };

    const seqN = ctx.count(SEQUENTIAL);
    const conN = ctx.count(CONCURRENT);
    return {
      params: {
        sequentialExecutions: seqN,
        concurrentExecutions: conN,
        inFlight: IN_FLIGHT,
        checkpointer: 'SqliteSaver (better-sqlite3, file, WAL)',
        langgraph: await peerVersion('@langchain/langgraph'),
        checkpointSqlite: await peerVersion('@langchain/langgraph-checkpoint-sqlite'),
        betterSqlite3: await peerVersion('better-sqlite3'),
      },
      measure: (run) => seqAndConcurrent(run, seqN, conN, IN_FLIGHT, execute),
      async close() {
        saver.db.close();
      },
    };
  },
});
