#!/usr/bin/env node
// Entry point of `npm run bench`. Plain JavaScript so that it needs nothing
// but Node: it installs the peer systems (bench/package.json, kept out of the
// product's dependencies) on first use, registers tsx, and hands over to the
// TypeScript runner.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));

if (!existsSync(`${benchDir}/node_modules`)) {
  process.stderr.write('bench: installing the peer systems (npm ci --prefix bench), once…\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const res = spawnSync(npm, ['ci', '--prefix', benchDir, '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (res.status !== 0) {
    process.stderr.write('bench: npm ci --prefix bench failed; the peer sections will report the error, the others run.\n');
  }
}

const { register } = await import('tsx/esm/api');
register();
const { main } = await import('./runner.ts');
process.exitCode = await main(process.argv.slice(2));
