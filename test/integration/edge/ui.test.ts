/**
 * The explorer's files under /ui/ (src/edge/routes/ui.ts) on a real edge: what
 * is served and how it is cached, nothing outside the build, open without a
 * key (the API is not), outside the rate limit, and a clear 404 when unbuilt.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { uiRouter } from '../../../src/edge/routes/ui.js';
import { startEdge, testRouter } from './support.js';

let build: string;
const ping = () =>
  testRouter((r) => {
    r.get('/ping', (ctx) => {
      ctx.body = { pong: true };
    });
  });

/** A GET with the path sent as written (fetch would normalise `..`). */
function rawGet(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.path = path;
    req.on('error', reject).end();
  });
}

beforeAll(async () => {
  build = await mkdtemp(join(tmpdir(), 'smartspec-ui-'));
  await mkdir(join(build, 'assets'));
  await writeFile(join(build, 'index.html'), '<!doctype html><script type="module" src="/ui/assets/app-1.js"></script>');
  await writeFile(join(build, 'assets', 'app-1.js'), 'console.log(1)');
  await writeFile(join(build, 'notes.txt'), 'not a type the explorer serves');
});

describe('the explorer files', () => {
  it('serves the page (not cached) and hashed assets (cached for good), with the security headers', async () => {
    const edge = await startEdge({ routers: [uiRouter(build)] });
    const bare = await fetch(`${edge.url}/ui`, { redirect: 'manual' });
    expect(bare.status).toBe(302);
    expect(bare.headers.get('location')).toBe('/ui/');
    const page = await fetch(`${edge.url}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toBe("default-src 'self'");
    expect(await page.text()).toContain('/ui/assets/app-1.js');
    const asset = await fetch(`${edge.url}/ui/assets/app-1.js`);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toBe('console.log(1)');
  });

  it('serves nothing but the built files of known types', async () => {
    const edge = await startEdge({ routers: [uiRouter(build)] });
    const missing = await fetch(`${edge.url}/ui/assets/other.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'NOT_FOUND', detail: 'no such file in the explorer: assets/other.js' });
    expect((await fetch(`${edge.url}/ui/notes.txt`)).status).toBe(404);
    for (const path of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/assets/..%2f..%2fpackage.json']) expect(await rawGet(edge.url, path), path).toBe(404);
  });

  it('is open when the API needs a key, and spends no rate-limit budget', async () => {
    const edge = await startEdge({ routers: [uiRouter(build), ping()], auth: { required: true }, env: { RATE_LIMIT_MAX: '2' } });
    for (let i = 0; i < 4; i++) expect((await fetch(`${edge.url}/ui/`)).status).toBe(200);
    expect((await fetch(`${edge.url}/ping`)).status).toBe(401);
    expect((await fetch(`${edge.url}/ui/`, { method: 'POST' })).status).toBe(401); // only reads of the files are open
  });

  it('answers 404 saying how to build it when there is no build', async () => {
    const edge = await startEdge({ routers: [uiRouter(join(build, 'nothing-here'))] });
    const res = await fetch(`${edge.url}/ui/`);
    expect(res.status).toBe(404);
    expect((await res.json()).detail).toBe('the explorer is not built: run npm run build:web (npm ci runs it)');
  });
});
