#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm run build`, which `npm ci` runs as `prepare`);
// in a checkout whose sources changed since the last build, runs the TypeScript through tsx.
import { fileURLToPath } from 'node:url';
import { isBuildFresh } from './compiled.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
if (isBuildFresh(root)) {
  await import('../dist/src/cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
