// npm run build: compile src/ and machines/ to dist/ (tsc, tsconfig.build.json), copy what the
// code reads next to itself (the reference page's files, nats.conf), then stamp the build.
// `--out DIR` builds elsewhere (the package test), leaving ./dist alone.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SOURCE_DIRS, STAMP } from '../bin/compiled.mjs';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const outFlag = process.argv.indexOf('--out');
const out = outFlag > 0 ? resolve(process.argv[outFlag + 1]) : join(root, 'dist');

rmSync(out, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

// Files the modules read at run time go beside them, as in the sources (new URL('./x', import.meta.url)).
function copyAssets(dir) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) copyAssets(path);
    else if (!/\.[mc]?ts$/.test(entry.name)) {
      mkdirSync(dirname(join(out, path)), { recursive: true });
      cpSync(join(root, path), join(out, path));
    }
  }
}
for (const dir of SOURCE_DIRS) copyAssets(dir);
// src/nats/server.ts finds it two levels up from itself: the repository's root, or dist/.
cpSync(join(root, 'nats.conf'), join(out, 'nats.conf'));
writeFileSync(join(out, relative('dist', STAMP)), `${new Date().toISOString()}\n`);
console.log(`built ${out}`);
