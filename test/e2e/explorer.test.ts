/**
 * The web explorer in a real browser: Debian's chromium driven by
 * playwright-core, against the real service (edge + worker, real
 * nats-server) serving the build of web/ under /ui/. The list, a fork-join
 * timeline, a resume and a signal done through the page, a refusal shown as
 * problem+json, the editor's checks, an axe-core pass, and the key prompt
 * once keys exist. Screenshots go to a temp folder (printed) for people.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import AxeBuilder from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../../src/auth/keys.js';
import { connectNats } from '../../src/nats/connect.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const example = async (name: string) => JSON.parse(await readFile(join(ROOT, 'examples', name), 'utf8'));

const nats = useNatsServer();
const startService = useService(nats);
let base: string;
let browser: Browser;
let shots: string;
/** The page a case is on: a failing case leaves a screenshot of it. */
let current: Page | undefined;
/** What the page reported that it should not have: CSP refusals, uncaught errors. */
const pageProblems: string[] = [];

async function openPage(path: string): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1360, height: 1000 } })).newPage();
  page.on('console', (m) => {
    // A 4xx the page asked for and shows (a refused action, the 401 before a key) is logged by Chromium: expected.
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) pageProblems.push(m.text());
  });
  page.on('pageerror', (e) => pageProblems.push(String(e)));
  await page.goto(`${base}/ui/${path}`);
  current = page;
  return page;
}

async function screenshot(page: Page, name: string) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** axe-core's serious and critical findings (it runs in its own page of the context). */
async function seriousViolations(page: Page) {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`);
}

async function started(definition: unknown, input: unknown, executionId: string, status: string) {
  const r = await http(base, 'POST', '/executions', { definition, input, executionId });
  expect(r.status, r.text).toBe(202);
  return waitForStatus(base, executionId, [status]);
}

beforeAll(async () => {
  // Fail loudly: a missing browser must not pass as a skipped test (.ci/run installs it).
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  // Test the page as the sources are now (npm ci built web/dist once), built aside so web/dist is never half-written.
  const ui = await mkdtemp(join(tmpdir(), 'smartspec-ui-build-'));
  await build({ configFile: join(ROOT, 'web', 'vite.config.ts'), logLevel: 'error', build: { outDir: ui, emptyOutDir: true } });
  base = (await startService({ env: { SMARTSPEC_UI_DIR: ui } })).url;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  shots = await mkdtemp(join(tmpdir(), 'smartspec-explorer-'));
  console.log(`explorer screenshots: ${shots}`);
  await Promise.all([
    started(await example('fork-join.json'), { feature: 'export' }, 'ui-forkjoin', 'COMPLETED'),
    started(await example('failing.json'), { version: '1.2' }, 'ui-failing', 'FAILED'),
  ]);
}, 90_000);

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && current && !current.isClosed()) await screenshot(current, `failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}`);
  current = undefined;
});

afterAll(async () => {
  await browser?.close();
});

// Each case drives a browser against a service on a 2-core machine others share: room, not a speed claim.
describe('the explorer', { timeout: 60_000 }, () => {
  it('is served under /ui/ with the CSP and no inline script or style', async () => {
    const page = await http(base, 'GET', '/ui/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe("default-src 'self'");
    expect(page.text).toMatch(/<script type="module" crossorigin src="\/ui\/assets\/index-[\w-]+\.js"><\/script>/);
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\bstyle=/);
    const missing = await http(base, 'GET', '/ui/assets/nope.js');
    expect(missing.status).toBe(404);
    expect(missing.json.detail).toContain('nope.js');
  });

  it('lists executions, filters them by status and finds one by id', async () => {
    const page = await openPage('');
    await page.locator('tr[data-execution="ui-forkjoin"]').waitFor();
    await expect(page.locator('tr[data-execution="ui-failing"] .status').textContent()).resolves.toBe('FAILED');
    await screenshot(page, '1-executions');
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel('Status').selectOption('FAILED');
    await page.locator('tr[data-execution="ui-forkjoin"]').waitFor({ state: 'detached' });
    expect(await page.locator('tr[data-execution="ui-failing"]').count()).toBe(1);
    expect(page.url()).toContain('status=FAILED');
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Execution id').fill('forkjoin');
    await page.locator('tr[data-execution="ui-failing"]').waitFor({ state: 'detached' });
    await page.getByLabel('Execution id').press('Enter');
    await page.locator('#execution-title').waitFor();
    expect(page.url()).toContain('#/executions/ui-forkjoin');
    await page.context().close();
  });

  it('draws the fork-join: three overlapping bars side by side, the join after them, the chain verified', async () => {
    const page = await openPage('#/executions/ui-forkjoin');
    await page.locator('[data-chain="verified"]', { hasText: 'all 12 records' }).waitFor();
    const box = async (step: string) => {
      const bar = page.locator(`.bar[data-step="${step}"][data-kind="run"], .bar[data-step="${step}"][data-kind="wait"]`);
      expect(await bar.count(), step).toBe(1);
      return (await bar.boundingBox())!;
    };
    const [security, perf, legal, merge] = [await box('security'), await box('perf'), await box('legal'), await box('merge')];
    const branches = [security, perf, legal];
    // Overlapping in time: the latest start is before the earliest end.
    expect(Math.max(...branches.map((b) => b.x))).toBeLessThan(Math.min(...branches.map((b) => b.x + b.width)));
    // Side by side: one row each.
    expect(new Set(branches.map((b) => Math.round(b.y))).size).toBe(3);
    // The join runs after every branch has ended.
    expect(merge.x).toBeGreaterThanOrEqual(Math.max(...branches.map((b) => b.x + b.width)) - 1);
    expect(await page.locator('.tl-group[aria-label="parallel group: security, perf, legal"] .tl-row').count()).toBe(3);
    // The statechart: the group is a parallel state with a region per branch; the execution ended completed.
    expect(await page.locator('.sc-parallel .sc-step').count()).toBe(3);
    expect(await page.locator('.sc-node.active[data-state="completed"]').count()).toBe(1);
    expect(await page.locator('.events tbody tr').count()).toBe(12);
    await screenshot(page, '2-fork-join');
    expect(await seriousViolations(page)).toEqual([]);
    await page.context().close();
  });

  it('shows a refused action as problem+json, then resumes the failed step with corrected steps to COMPLETED', async () => {
    const page = await openPage('#/executions/ui-failing');
    await page.locator('[data-status="FAILED"]').waitFor();
    expect(await page.locator('.sc-step.failed[data-step="tests"]').count()).toBe(1);
    // Both attempts of the retried step are on the timeline, with the backoff between them.
    expect(await page.locator('.bar[data-step="tests"][data-kind="run"]').count()).toBe(2);
    expect(await page.locator('.bar[data-step="tests"][data-kind="backoff"]').count()).toBe(1);

    await page.getByLabel('Signal name').fill('nope');
    await page.getByRole('button', { name: 'Send signal' }).click();
    await expect(page.locator('.problem[role="alert"]').textContent()).resolves.toMatch(/Invalid execution state \(409 INVALID_EXECUTION_STATE\).*is FAILED: it takes no signals/);

    // Pick the failed step on the timeline, then resume with the corrected definition.
    await page.locator('.bar[data-step="tests"][data-kind="run"]').last().click();
    expect(await page.getByLabel('From step').inputValue()).toBe('tests');
    await page.getByLabel('with edited steps').check();
    await page.getByLabel(/^Steps \(JSON or YAML/).fill(JSON.stringify(await example('corrected.json')));
    await screenshot(page, '3-failed');
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await page.getByText('Resuming from tests.').waitFor();
    await page.locator('[data-status="COMPLETED"]').waitFor({ timeout: 40_000 }).catch(async (err: Error) => {
      const api = (await http(base, 'GET', '/executions/ui-failing')).json;
      const types = ((await http(base, 'GET', '/executions/ui-failing/events')).json.events as { type: string }[]).map((e) => e.type);
      const shown = await page.locator('[data-status]').first().getAttribute('data-status').catch(() => '?');
      throw new Error(`${err.message}; the page shows ${shown}; the API says ${api?.status}; the log: ${types.join(' ')}`);
    });
    await page.locator('.tl-marker.marker-resume').first().waitFor();
    expect((await waitForStatus(base, 'ui-failing', ['COMPLETED'])).steps.tests.output).toEqual({ passed: 42 });
    await page.locator('[data-chain="verified"]').waitFor();
    await screenshot(page, '4-resumed');
    await page.context().close();
  });

  it('registers a workflow from the editor (problems shown as you type), starts it and delivers its signal', async () => {
    const page = await openPage('#/workflows');
    const editor = page.getByLabel('Definition (JSON or YAML)');
    await editor.fill(['id: ui-approval', 'steps:', '  - id: greet', '    type: transfrom', '    value: 1'].join('\n'));
    await page.locator('#definition-check').getByText("unknown step type 'transfrom'").waitFor();
    await expect(page.locator('#definition-check .pos').first().textContent()).resolves.toBe('line 4, column 11');
    expect(await page.getByRole('button', { name: 'Register' }).isDisabled()).toBe(true);
    await editor.fill(
      [
        'id: ui-approval',
        'steps:',
        '  - { id: greet, type: transform, value: { text: "Hello {{input.name}}" } }',
        '  - { id: approval, type: signal, name: approve }',
        '  - { id: answer, type: transform, value: { greeting: "{{steps.greet.output.text}}", by: "{{steps.approval.output.by}}" } }',
      ].join('\n'),
    );
    await page.getByText('Valid definition.').waitFor();
    await screenshot(page, '5-workflows');
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Register' }).click();
    await page.locator('#workflow-title', { hasText: 'Workflow ui-approval v1' }).waitFor();
    expect(await page.locator('.sc-step').count()).toBe(3);
    await page.getByLabel('Input (JSON)').fill('{"name":"Ada"}');
    await page.getByRole('button', { name: 'Start' }).click();
    await page.locator('[data-status="WAITING"]').waitFor({ timeout: 15_000 });
    const id = decodeURIComponent(page.url().split('#/executions/')[1]);

    await expect.poll(() => page.getByLabel('Signal name').inputValue()).toBe('approve'); // offered from the definition
    await page.getByLabel('Payload (a JSON object or array)').fill('{"by":"Grace"}');
    await page.getByRole('button', { name: 'Send signal' }).click();
    await page.getByText('Signal approve sent to step approval.').waitFor();
    await page.locator('[data-status="COMPLETED"]').waitFor({ timeout: 15_000 });
    expect((await waitForStatus(base, id, ['COMPLETED'])).output).toEqual({ greeting: 'Hello Ada', by: 'Grace' });
    // The wait ends where the signal arrived, before the next step runs.
    const waitEnd = Number(await page.locator('.bar[data-step="approval"][data-kind="wait"]').getAttribute('data-end'));
    expect(waitEnd).toBeLessThanOrEqual(Number(await page.locator('.bar[data-step="answer"]').getAttribute('data-start')));
    await screenshot(page, '6-signalled');
    await page.context().close();
  });

  it('raised nothing in the browser: no CSP refusal, no uncaught error', () => {
    expect(pageProblems).toEqual([]);
  });

  it('asks for a key once keys exist, and then works with it', async () => {
    const nc = await connectNats(nats.url, 'explorer-test');
    try {
      const { key } = await (await KeyStore.open(nc)).create({ tenant: 'default', scopes: ['read', 'write'] });
      // The edge sees the new key through its KV watch: from then on the API needs one, the pages do not.
      await expect.poll(async () => (await http(base, 'GET', '/executions')).status, { timeout: 5000 }).toBe(401);
      expect((await http(base, 'GET', '/ui/')).status).toBe(200);
      const page = await openPage('');
      const field = page.getByLabel('API key', { exact: true });
      await field.waitFor();
      await screenshot(page, '7-key');
      expect(await seriousViolations(page)).toEqual([]);
      await field.fill(key);
      await page.getByRole('button', { name: 'Use key' }).click();
      await page.locator('tr[data-execution="ui-forkjoin"]').waitFor();
      await page.context().close();
    } finally {
      await nc.close();
    }
  });
});
