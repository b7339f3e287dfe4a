/**
 * The web explorer (web/, built into web/dist by `npm run build:web`, which
 * `npm ci` runs) served under /ui/. The built files are read once when the
 * router is made: only files the build wrote are served, and nothing from
 * the URL ever reaches the file system. The pages hold no data, so they are
 * open like /healthz (authentication.ts); every API call they make carries
 * the key the user gives the page.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import { SmartSpecError } from '../../errors.js';

export const UI_PREFIX = '/ui';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

interface UiFile { type: string; body: Buffer }

/** web/dist of the package this module belongs to (found upwards: it runs from src/ or from a compiled dist/). */
export function defaultUiDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'web', 'dist');
}

/** The build's files; none (the page answers 404) when there is no build or it is being rewritten meanwhile. */
function readBuild(dir: string): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  try {
    if (!existsSync(join(dir, 'index.html'))) return files;
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const full = join(entry.parentPath, entry.name);
      const type = TYPES[extname(entry.name)];
      if (type) files.set(relative(dir, full).split(sep).join('/'), { type, body: readFileSync(full) });
    }
  } catch {
    files.clear(); // a build in progress: serving half of it would be worse than none
  }
  return files;
}

export function uiRouter(dir = defaultUiDir()): Router {
  const files = readBuild(dir);
  const router = new Router();

  router.get(`${UI_PREFIX}{/*path}`, (ctx) => {
    // The page's assets are relative to /ui/: without the slash they would resolve against /.
    if (ctx.path === UI_PREFIX) return ctx.redirect(`${UI_PREFIX}/`);
    if (files.size === 0) throw new SmartSpecError('NOT_FOUND', 'the explorer is not built: run npm run build:web (npm ci runs it)');
    const path = ctx.params.path as string | string[] | undefined;
    const name = (Array.isArray(path) ? path.join('/') : path) || 'index.html';
    const file = files.get(name);
    if (!file) throw new SmartSpecError('NOT_FOUND', `no such file in the explorer: ${name}`);
    ctx.type = file.type;
    // Vite names assets by their content hash: they never change; the page itself may.
    ctx.set('Cache-Control', name.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    ctx.body = file.body;
  });

  return router;
}
