/**
 * The bench runner: one private nats-server, every listed section set up once,
 * one discarded warm-up call each, then `runs` counted runs round-robin across
 * sections. Prints a table and writes bench/results/latest.json.
 *
 *   npm run bench                      all sections, 5 runs
 *   npm run bench -- --runs 3          fewer runs
 *   npm run bench -- --only ceiling    some sections (comma-separated names)
 *   npm run bench -- --quick           workloads × 0.2 and 3 runs (a smoke check)
 *   npm run bench -- --out FILE        JSON elsewhere
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNatsServerBinary, startNatsServer, type NatsServer } from '../src/nats/server.js';
import { SkipSection, type BenchContext, type Section, type SectionInstance } from './lib/section.js';
import { buildResults, renderTable, type SectionRecord } from './lib/report.js';
import { sections as allSections } from './sections/index.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const DEFAULT_OUT = join(BENCH_DIR, 'results', 'latest.json');

interface Options {
  runs: number;
  scale: number;
  only?: string[];
  out: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 5, scale: 1, out: DEFAULT_OUT };
  let runsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--runs') { o.runs = positiveInt(a, value()); runsGiven = true; }
    else if (a === '--only') o.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--quick') { o.scale = 0.2; if (!runsGiven) o.runs = 3; }
    else if (a === '--scale') o.scale = Number(value());
    else if (a === '--out') o.out = resolve(value());
    else if (a === '--help' || a === '-h') { process.stdout.write(usage()); process.exit(0); }
    else throw new Error(`unknown argument ${a}\n${usage()}`);
  }
  if (!(o.scale > 0)) throw new Error('--scale must be a positive number');
  return o;
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${v}`);
  return n;
}

function usage(): string {
  return `usage: npm run bench -- [--runs N] [--only a,b] [--quick] [--scale X] [--out FILE]\nsections: ${allSections.map((s) => s.name).join(', ')}\n`;
}

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

export async function main(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  let selected: Section[] = allSections;
  if (opts.only) {
    const unknown = opts.only.filter((n) => !allSections.some((s) => s.name === n));
    if (unknown.length) {
      process.stderr.write(`unknown section(s): ${unknown.join(', ')}\n${usage()}`);
      return 2;
    }
    selected = allSections.filter((s) => opts.only!.includes(s.name));
  }

  const startedAt = new Date();
  const loadavgAtStart = loadavg().map((x) => Math.round(x * 100) / 100);
  const t0 = performance.now();
  const root = await mkdtemp(join(tmpdir(), 'smartspec-bench-'));
  let nats: NatsServer | undefined;
  const instances = new Map<string, SectionInstance>();
  const records: SectionRecord[] = selected.map((s) => ({ name: s.name, title: s.title, figures: s.figures, ratios: s.ratios ?? [], params: {}, samples: [] }));
  const recordOf = (s: Section) => records.find((r) => r.name === s.name)!;

  const onSignal = () => {
    void (nats?.stop() ?? Promise.resolve())
      .then(() => rm(root, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    nats = await startNatsServer({ storeDir: join(root, 'nats'), logFile: join(root, 'nats-server.log') });
    log(`nats-server ${nats.url} (store ${join(root, 'nats')}), ${opts.runs} runs, scale ${opts.scale}`);

    for (const s of selected) {
      const tmp = join(root, s.name);
      await mkdir(tmp, { recursive: true });
      const ctx: BenchContext = {
        natsUrl: nats.url,
        natsPid: nats.pid,
        tmpDir: tmp,
        runs: opts.runs,
        scale: opts.scale,
        count: (n) => Math.max(1, Math.round(n * opts.scale)),
        log: (m) => log(`[${s.name}] ${m}`),
      };
      try {
        const inst = await s.setup(ctx);
        instances.set(s.name, inst);
        recordOf(s).params = inst.params ?? {};
      } catch (e) {
        if (e instanceof SkipSection) {
          recordOf(s).skipped = e.message;
          log(`[${s.name}] skipped: ${e.message}`);
        } else fail(recordOf(s), 'setup', e);
      }
    }

    for (let run = -1; run < opts.runs; run++) {
      for (const s of selected) {
        const inst = instances.get(s.name);
        if (!inst) continue;
        const rec = recordOf(s);
        // Each section starts clean: the garbage and the server work the previous one left are
        // not charged to it (the first resume after fork5 used to pay for 4,000 executions' garbage).
        (globalThis as { gc?: () => void }).gc?.();
        await new Promise((r) => setTimeout(r, 200));
        const t = performance.now();
        try {
          const sample = await inst.measure({ index: run, warmup: run < 0 });
          const missing = s.figures.filter((f) => typeof sample[f.key] !== 'number' || !Number.isFinite(sample[f.key]));
          if (missing.length) throw new Error(`measure() returned no finite value for ${missing.map((f) => f.key).join(', ')}`);
          if (run >= 0) rec.samples.push(sample);
          log(`[${s.name}] ${run < 0 ? 'warm-up' : `run ${run + 1}/${opts.runs}`} ${((performance.now() - t) / 1000).toFixed(1)} s: ${brief(sample)}`);
        } catch (e) {
          fail(rec, run < 0 ? 'warm-up' : `run ${run + 1}`, e);
          instances.delete(s.name);
          await closeQuietly(s.name, inst);
        }
      }
    }
  } catch (e) {
    log(`aborted: ${(e as Error).stack ?? e}`);
    for (const r of records) if (!r.error && !r.skipped && r.samples.length < opts.runs) r.error = `bench aborted: ${(e as Error).message}`;
  } finally {
    for (const [name, inst] of instances) await closeQuietly(name, inst);
    await nats?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await rm(root, { recursive: true, force: true });
  }

  const results = buildResults(records);
  const doc = {
    schema: 1,
    startedAt: startedAt.toISOString(),
    durationSec: Math.round((performance.now() - t0) / 100) / 10,
    runs: opts.runs,
    scale: opts.scale,
    note: 'Each figure: median and min–max over the counted runs (samples in run order). Ratios are computed run by run from same-run pairs, then summarized.',
    machine: { ...machineInfo(), loadavgAtStart },
    sections: results,
  };
  await mkdir(dirname(opts.out), { recursive: true });
  const tmpOut = `${opts.out}.tmp`;
  await writeFile(tmpOut, `${JSON.stringify(doc, null, 2)}\n`);
  await rename(tmpOut, opts.out);

  process.stdout.write(`\nSmartSpec bench — ${opts.runs} runs, median and range (min–max); ${doc.durationSec} s; ${doc.machine.cpus}× ${doc.machine.cpuModel}\n\n`);
  process.stdout.write(`${renderTable(results)}\n\nJSON: ${opts.out}\n`);
  return records.some((r) => r.error) ? 1 : 0;
}

function fail(rec: SectionRecord, where: string, e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  rec.error = `${where}: ${msg}`;
  log(`[${rec.name}] FAILED in ${where}: ${e instanceof Error ? e.stack : msg}`);
}

async function closeQuietly(name: string, inst: SectionInstance): Promise<void> {
  try {
    await inst.close();
  } catch (e) {
    log(`[${name}] close failed: ${(e as Error).message}`);
  }
}

function brief(sample: Record<string, number>): string {
  return Object.entries(sample).map(([k, v]) => `${k}=${v >= 100 ? Math.round(v) : v.toFixed(2)}`).join(' ');
}

function machineInfo() {
  let natsServer = 'unknown';
  try {
    natsServer = execFileSync(findNatsServerBinary(), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // reported as unknown
  }
  const c = cpus();
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: c.length,
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    freeMemGiBAtEnd: Math.round(freemem() / 2 ** 30),
    loadavgAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
    natsServer,
  };
}
