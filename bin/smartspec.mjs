#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm run build`, which `npm ci` runs as `prepare`);
// in a checkout whose sources changed since the last build, runs the TypeScript through tsx.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const first = process.argv[2];
if (first === '--version' || first === '-v' || first === 'version') {
  // Nothing else to load: the version is the package's (as `smartspec help` reads it).
  process.stdout.write(`${JSON.parse(readFileSync(`${root}package.json`, 'utf8')).version}\n`);
} else {
  const { isBuildFresh } = await import('./compiled.mjs');
  if (isBuildFresh(root)) {
    await import('../dist/src/cli.js');
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import('../src/cli.ts');
  }
}
