/**
 * Start-up of the command line, as a user pays it: `smartspec --version`
 * (loads nothing but the command table) and `smartspec status <id>` (connects
 * to NATS, reads one execution's log; loads no edge, engine or LLM layer),
 * each spawned 10 times per run, hyperfine-style: the figure is the median
 * wall time of the 10, from spawn to exit. The bin is whatever
 * bin/smartspec.mjs runs (TypeScript through tsx, or a build).
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineSection } from '../lib/section.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = resolve(REPO, 'bin/smartspec.mjs');
const TIMES = 10;

function timed(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((res, rej) => {
    const t = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', rej);
    child.once('close', (code) => (code === 0 ? res(performance.now() - t) : rej(new Error(`smartspec ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
}

async function median(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < TIMES; i++) times.push(await timed(args, env));
  times.sort((a, b) => a - b);
  return (times[TIMES / 2 - 1] + times[TIMES / 2]) / 2;
}

export default defineSection({
  name: 'startup',
  title: `CLI start-up (median of ${TIMES} spawns, spawn to exit)`,
  figures: [
    { key: 'version.ms', label: 'smartspec --version', unit: 'ms', better: 'lower' },
    { key: 'status.ms', label: 'smartspec status <id>', unit: 'ms', better: 'lower' },
  ],
  async setup(ctx) {
    const { NODE_OPTIONS: _loaderFlags, ...userEnv } = process.env; // the bench's own loader flags are not the user's
    const env: NodeJS.ProcessEnv = { ...userEnv, NATS_URL: ctx.natsUrl };
    const id = `startup-${process.pid}`;
    await timed(['run', 'examples/fork-join.json', '--id', id, '--input', '{"feature":"startup"}'], env);
    return {
      params: { spawnsPerFigure: TIMES, node: process.version },
      async measure() {
        return { 'version.ms': await median(['--version'], env), 'status.ms': await median(['status', id], env) };
      },
      async close() {},
    };
  },
});
