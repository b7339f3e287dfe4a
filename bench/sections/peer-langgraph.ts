/**
 * Section 3, Peer: LangGraph.js with its SQLite checkpointer (a file in the
 * section's temp dir, WAL as the saver sets it) running the fork5 graph:
 * A fans out to B, C, D, which join into E; every node a trivial transform.
 * Each execution is one `invoke` on its own thread_id, so every superstep is
 * checkpointed. Measured one at a time and with 64 in flight (alternating
 * which goes first); per-execution latency is invoke start → result.
 *
 * Resume, LangGraph's way: a linear graph of RESUME_NODES nodes whose last one
 * fails runs once per thread; resuming is `getStateHistory` (to find the
 * checkpoint, as the engine lists checkpoints) then `invoke(null, config)`
 * from the newest checkpoint, which re-runs the last node (failing again).
 * The resume section's figure stops at the recorded ExecutionResumed, so it
 * leaves out that re-run: LangGraph's figure here is, if anything, flattered less.
 */
import { join } from 'node:path';
import { seqAndConcurrent, throughputSpecs } from '../lib/load.js';
import { fork5, fork5Expected, importPeer, peerVersion } from '../lib/peers.js';
import { defineSection } from '../lib/section.js';

const SEQUENTIAL = 300;
const CONCURRENT = 640;
const IN_FLIGHT = 64;
/** Ten steps and a final one that fails, as in the resume section's histories. */
const RESUME_NODES = 11;
const RESUMES = 30;

export default defineSection({
  name: 'peer-langgraph',
  title: 'Peer: LangGraph.js + SQLite checkpointer, fork5 graph',
  figures: [
    ...throughputSpecs('seq', 'one at a time'),
    ...throughputSpecs('c64', `${IN_FLIGHT} in flight`),
    { key: 'resume.p50Ms', label: `resume of a failed ${RESUME_NODES}-node thread (getStateHistory + invoke from the checkpoint), p50`, unit: 'ms', better: 'lower' },
  ],
  ratios: [
    { key: 'engineResume100OverLanggraph', label: 'engine resume of 100 events (last checkpoint) ÷ LangGraph resume (≤ 1 is the target)', numerator: 'resume:e100.lastMs', denominator: 'resume.p50Ms' },
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

    // The resume workload: nodes n0..n9 pass, `end` fails (every time: a resume re-runs it and fails again).
    let chain = new StateGraph(State) as unknown as { addNode: (n: string, f: (s: { input: number }) => object) => typeof chain; addEdge: (a: string, b: string) => typeof chain; compile: (o: object) => typeof app };
    const names = [...Array.from({ length: RESUME_NODES - 1 }, (_, i) => `n${i}`), 'end'];
    for (const n of names) chain = chain.addNode(n, n === 'end' ? () => { throw new Error('stops here, to be resumed'); } : (s) => ({ input: s.input + 1 }));
    chain = chain.addEdge(START, names[0]);
    for (let i = 1; i < names.length; i++) chain = chain.addEdge(names[i - 1], names[i]);
    const failing = chain.addEdge('end', END).compile({ checkpointer: saver });
    const failedThread = async () => {
      const config = { configurable: { thread_id: `resume-${++threads}` } };
      await failing.invoke({ input: 0 }, config).then(() => { throw new Error('the failing graph completed'); }, () => undefined);
      return config;
    };
    const resumeMs = async (config: object) => {
      const t = performance.now();
      let newest: { config: object; next: string[] } | undefined;
      for await (const snap of failing.getStateHistory(config)) { newest = snap as never; break; } // newest first
      if (!newest || newest.next[0] !== 'end') throw new Error(`resume: the newest checkpoint is before ${newest?.next}, not before 'end'`);
      await failing.invoke(null, newest.config).then(() => { throw new Error('the resumed graph completed'); }, (err: Error) => {
        if (!/to be resumed/.test(err.message)) throw err;
      });
      return performance.now() - t;
    };

    const seqN = ctx.count(SEQUENTIAL);
    const conN = ctx.count(CONCURRENT);
    return {
      params: {
        sequentialExecutions: seqN,
        concurrentExecutions: conN,
        inFlight: IN_FLIGHT,
        resumeNodes: RESUME_NODES,
        resumesPerRun: RESUMES,
        checkpointer: 'SqliteSaver (better-sqlite3, file, WAL)',
        langgraph: await peerVersion('@langchain/langgraph'),
        checkpointSqlite: await peerVersion('@langchain/langgraph-checkpoint-sqlite'),
        betterSqlite3: await peerVersion('better-sqlite3'),
      },
      async measure(run) {
        const sample = await seqAndConcurrent(run, seqN, conN, IN_FLIGHT, execute);
        const ms: number[] = [];
        for (let i = 0; i < RESUMES; i++) ms.push(await resumeMs(await failedThread()));
        return { ...sample, 'resume.p50Ms': ms.sort((a, b) => a - b)[ms.length >> 1] };
      },
      async close() {
        saver.db.close();
      },
    };
  },
});
