/**
 * The API's contracts, served by a real service: the OpenAPI document is
 * valid OpenAPI 3.1 and has every route the edge's routers have (and no
 * other), the definition schema accepts the shipped examples and refuses what
 * the validator refuses, and the reference page works under the strict CSP.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type Router from '@koa/router';
import { compileErrors, validate } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { definitionJsonSchema } from '../../src/contracts/definitionSchema.js';
import { openApiPath } from '../../src/contracts/openapi.js';
import type { EdgeApp } from '../../src/edge/index.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService } from '../support/service.js';

const run = promisify(execFile);
/** Debian's chromium, when installed (.ci/run installs it for the browser tests). */
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const nats = useNatsServer();
const start = useService(nats);

/** `GET /executions/:id`, … of every router the app mounts (HEAD, which the router adds to each GET, left out). */
function routesOf(app: EdgeApp): string[] {
  const routers = app.middleware.map((m) => (m as { router?: Router }).router).filter((r): r is Router => r !== undefined);
  return routers.flatMap((r) => r.stack.flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${openApiPath(String(layer.path))}`)));
}

const OPERATION_METHODS = ['get', 'post', 'put', 'patch', 'delete'];

describe('the contracts of the HTTP API', () => {
  let base: string;
  let app: EdgeApp;
  beforeAll(async () => {
    const service = await start({ worker: false });
    base = service.url;
    app = service.app!;
  });

  it('serves a valid OpenAPI 3.1 document', async () => {
    const res = await http(base, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.json.openapi).toBe('3.1.0');
    expect(res.json.info.version).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
    const result = await validate(structuredClone(res.json));
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
  });

  it('documents every route the edge serves, and no route it does not', async () => {
    const doc = (await http(base, 'GET', '/openapi.json')).json;
    const served = routesOf(app);
    expect(served).toEqual(expect.arrayContaining(['POST /executions', 'GET /executions/{id}/events/stream', 'GET /healthz', 'POST /v1/chat/completions', 'GET /openapi.json']));
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
      Object.keys(item).filter((m) => OPERATION_METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(served.filter((r) => !documented.includes(r)), 'routes missing from /openapi.json').toEqual([]);
    expect(documented.filter((r) => !served.includes(r)), 'documented routes the edge does not have').toEqual([]);
  });

  it("documents the routes' validation: what the document forbids, the route refuses", async () => {
    const doc = (await http(base, 'GET', '/openapi.json')).json;
    const start = doc.components.schemas.StartExecution;
    expect(start.additionalProperties).toBe(false);
    expect(Object.keys(start.properties)).toEqual(expect.arrayContaining(['workflowId', 'definition', 'input', 'executionId', 'budget']));
    // The executionId pattern in the document is the one the route applies.
    const pattern = new RegExp(start.properties.executionId.pattern);
    expect(pattern.test('bad id!')).toBe(false);
    const refused = await http(base, 'POST', '/executions', { workflowId: 'w', executionId: 'bad id!', extra: 1 });
    expect(refused.status).toBe(422);
    expect(refused.json.errors.map((e: { path: string }) => e.path).sort()).toEqual(['body', 'body.executionId']);
    const limit = doc.paths['/executions'].get.parameters.find((p: { name: string }) => p.name === 'limit');
    expect(limit.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000 });
    expect((await http(base, 'GET', `/executions?limit=${limit.schema.maximum + 1}`)).status).toBe(422);
    expect((await http(base, 'GET', `/executions?limit=${limit.schema.maximum}`)).status).toBe(200);
  });

  it('serves the JSON Schema of definitions, generated from zod, and the committed copy is current', async () => {
    const res = await http(base, 'GET', '/schemas/definition.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/schema\+json/);
    expect(res.json).toEqual(definitionJsonSchema());
    const committed = JSON.parse(readFileSync('schemas/definition.json', 'utf8'));
    expect(committed, 'schemas/definition.json is stale: regenerate it with `node bin/smartspec.mjs schema > schemas/definition.json`').toEqual(res.json);
  });

  it('the schema accepts every example (each names it in $schema) and refuses what the validator refuses', async () => {
    const validateDoc = new Ajv2020({ strict: false, allErrors: true }).compile(definitionJsonSchema());
    const examples = readdirSync('examples').filter((f) => f.endsWith('.json'));
    expect(examples.length).toBeGreaterThan(2);
    for (const file of examples) {
      const example = JSON.parse(readFileSync(`examples/${file}`, 'utf8'));
      expect(example.$schema, file).toBe('../schemas/definition.json');
      expect(validateDoc(example), `${file}: ${JSON.stringify(validateDoc.errors)}`).toBe(true);
      // …and the service takes it as it is, $schema included.
      expect((await http(base, 'POST', '/workflows', example)).status, file).toBe(201);
    }
    const wrong = { id: 'w', steps: [{ id: 'a', type: 'http', request: { url: 'http://x', method: 'FETCH' } }], extra: true };
    expect(validateDoc(wrong)).toBe(false);
    expect(validateDoc.errors!.map((e) => e.keyword)).toEqual(expect.arrayContaining(['additionalProperties']));
    expect((await http(base, 'POST', '/workflows', wrong)).status).toBe(422);
  });

  it('serves the reference page and its files itself, under the strict CSP, with no inline script or style', async () => {
    const page = await http(base, 'GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe("default-src 'self'");
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)/); // every script is a file
    expect(page.text).not.toMatch(/<style|\sstyle=/);
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(assets).toEqual(expect.arrayContaining(['/docs/reference.js', '/docs/reference.css', '/openapi.json']));
    for (const asset of assets) expect(asset, 'same origin only').toMatch(/^\//);
    const script = await http(base, 'GET', '/docs/reference.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(script.text).toContain("fetch('/openapi.json')");
    expect(script.text).not.toMatch(/innerHTML|setAttribute\('style'/);
    expect((await http(base, 'GET', '/docs/reference.css')).headers.get('content-type')).toMatch(/^text\/css/);
    const missing = await http(base, 'GET', '/docs/secret.txt');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/problem\+json/);
  });

  it.skipIf(!CHROMIUM)('the reference page renders every operation in a real browser, with no CSP violation or script error', async () => {
    const { stdout, stderr } = await run(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--enable-logging=stderr', '--v=0', '--virtual-time-budget=10000', '--dump-dom', `${base}/docs`], { timeout: 60_000 });
    const doc = (await http(base, 'GET', '/openapi.json')).json;
    const operations = Object.values(doc.paths as Record<string, object>).reduce<number>((n, item) => n + Object.keys(item).length, 0);
    const schemas = Object.keys(doc.components.schemas).length;
    expect(stdout.match(/<section class="operation"/g)?.length).toBe(operations + schemas);
    expect(stdout).toContain('/executions/{id}/events/stream');
    expect(stderr).not.toMatch(/Content Security Policy|Refused to|Uncaught/);
  }, 90_000);

  it('keeps the contracts open when API keys are required, and the API closed', async () => {
    const locked = await start({ worker: false, env: { SMARTSPEC_AUTH: 'required' } });
    expect((await http(locked.url, 'GET', '/executions')).status).toBe(401);
    for (const path of ['/openapi.json', '/schemas/definition.json', '/docs', '/docs/reference.js']) expect((await http(locked.url, 'GET', path)).status, path).toBe(200);
  });
});
