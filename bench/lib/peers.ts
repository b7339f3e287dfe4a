/** Helpers for sections that load the peer systems installed under bench/node_modules. */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Installed version of a peer package, or 'missing'. */
export async function peerVersion(pkg: string): Promise<string> {
  try {
    const json = JSON.parse(await readFile(join(BENCH_DIR, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string };
    return json.version;
  } catch {
    return 'missing';
  }
}

/** Imports a peer, turning "not installed" into an error that says how to install it. */
export async function importPeer<T>(pkg: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') {
      throw new Error(`peer package ${pkg} is not installed: run \`npm ci --prefix bench\` (${err.message})`);
    }
    throw e;
  }
}

/** The fork5 workload's steps: A → {B, C, D} → E, each a trivial transform (no I/O). */
export const fork5 = {
  a: (input: number) => input + 1,
  b: (a: number) => a * 2,
  c: (a: number) => a * 3,
  d: (a: number) => a * 5,
  e: (b: number, c: number, d: number) => b + c + d,
} as const;

/** E's output for an execution started with `input`, to check every run's results. */
export function fork5Expected(input: number): number {
  const a = fork5.a(input);
  return fork5.e(fork5.b(a), fork5.c(a), fork5.d(a));
}
