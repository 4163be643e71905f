// reports_page: the v4 web page in a real browser (Debian's chromium driven by playwright-core).
// Log in (an invalid UUID is refused), create two reports, move one through
// pending→queued→processing→completed with scripts/update_report_status.sh and see every
// status on the page within a second without a reload; a refused transition changes nothing;
// the sidecar restarts and an update made while it was down arrives; history on demand;
// readable status colours. A screenshot goes to test-output/ at the repository root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BASE, HOST, PORT, ROOT, sql, closePool, stopSidecar, startSidecar, stopPostgres, startPostgres } from '../e2e/lib/env.mjs';

const OUT = path.join(ROOT, 'test-output');
let context, page, profile;

function runScript(args) {
  return new Promise((resolve) => {
    execFile(path.join(ROOT, 'scripts/update_report_status.sh'), args, { env: { ...process.env, HOST, PORT: String(PORT) } },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

const statusOf = (id) => page.locator(`tr[data-report-id="${id}"] .status`).getAttribute('data-status');
// waitStatus waits (at most ms) until the page shows report id with status.
const waitStatus = (id, status, ms) => page.waitForFunction(([i, s]) => {
  const b = document.querySelector(`tr[data-report-id="${i}"] .status`);
  return b && b.dataset.status === s;
}, [id, status], { timeout: ms, polling: 20 });

before(async () => {
  mkdirSync(OUT, { recursive: true });
  profile = mkdtempSync(path.join(os.tmpdir(), 'herald-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] ?? await context.newPage();
});

after(async () => {
  if (context) await context.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await closePool();
});

test('the report status page, live, end to end', async (t) => {
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${BASE}/`);
  await page.evaluate(() => { window.__sameDocument = true; }); // gone if the page ever reloads

  await t.test('an invalid user id is refused with a visible message', async () => {
    const input = page.getByLabel('User ID (a UUID)');
    await input.fill('not-a-uuid');
    await page.getByRole('button', { name: 'Log in' }).click();
    const alert = page.locator('#login-error');
    await alert.waitFor({ state: 'visible', timeout: 2000 });
    assert.match(await alert.textContent(), /not a UUID/);
    assert.equal(await input.getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#app').isVisible(), false);
  });

  let user;
  await t.test('a generated UUID logs in and the stream goes live', async () => {
    await page.getByRole('button', { name: 'Generate a UUID' }).click();
    user = await page.getByLabel('User ID (a UUID)').inputValue();
    assert.match(user, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await page.getByLabel('User ID (a UUID)').press('Enter'); // the keyboard submits the form
    await page.locator('#app').waitFor({ state: 'visible', timeout: 2000 });
    assert.equal(await page.locator('#login-error').isVisible(), false);
    assert.equal(await page.locator('#who').textContent(), user);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 5000 });
  });

  const ids = [];
  await t.test('Create New Report twice gives two pending rows', async () => {
    const create = page.getByRole('button', { name: 'Create New Report' });
    for (let i = 0; i < 2; i++) {
      const [res] = await Promise.all([page.waitForResponse((r) => r.url().includes('/v4/new/report')), create.click()]);
      assert.equal(res.status(), 201);
      ids.push((await res.json()).reportId);
    }
    await page.waitForFunction(() => document.querySelectorAll('#reports-body tr[data-report-id]').length === 2, null, { timeout: 2000 });
    const rows = await page.locator('#reports-body tr[data-report-id]').evaluateAll((trs) => trs.map((tr) => tr.dataset.reportId));
    assert.deepEqual(rows, ids);
    for (const id of ids) assert.equal(await statusOf(id), 'pending');
  });

  await t.test('update_report_status.sh moves a report pending→queued→processing→completed, each shown within a second', async () => {
    for (const status of ['queued', 'processing', 'completed']) {
      const r = await runScript([user, ids[0], status]);
      assert.equal(r.code, 0, r.stderr);
      const t0 = Date.now();
      await waitStatus(ids[0], status, 1000);
      t.diagnostic(`${status} shown ${Date.now() - t0} ms after the script returned`);
      assert.equal(await statusOf(ids[1]), 'pending');
    }
    const badge = page.locator(`tr[data-report-id="${ids[0]}"] .status`);
    assert.equal(await badge.textContent(), 'completed');
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload happened');
  });

  await t.test('a refused transition leaves the page unchanged', async () => {
    const before = await page.locator('#reports-body').innerHTML();
    const r = await runScript([user, ids[0], 'pending']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /409/);
    await page.waitForTimeout(500);
    assert.equal(await page.locator('#reports-body').innerHTML(), before);
    assert.equal(await statusOf(ids[0]), 'completed');
    assert.equal(await statusOf(ids[1]), 'pending');
  });

  await t.test('the sidecar restarts; the page shows "reconnecting" and then an update made during the outage', async () => {
    stopSidecar();
    try {
      await page.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 5000 });
      assert.match(await page.locator('#conn').textContent(), /Reconnecting/);
      await sql('select herald.transition($1, $2)', [ids[1], 'queued']);
      await page.waitForTimeout(300);
      assert.equal(await statusOf(ids[1]), 'pending'); // nobody could have told the page yet
    } finally {
      startSidecar();
    }
    await waitStatus(ids[1], 'queued', 10000);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 5000 });
    // The browser resumed with Last-Event-ID (a replay from the outbox), not a fresh snapshot.
    const metrics = await (await fetch(`${BASE}/metrics`)).text();
    const replays = Number((/^herald_sse_replays_total (\d+)$/m.exec(metrics) || [])[1]);
    assert.ok(replays >= 1, `herald_sse_replays_total is ${replays} after the reconnect`);
    assert.equal(await statusOf(ids[0]), 'completed');
    // and it is live again
    const r = await runScript([user, ids[1], 'canceled']);
    assert.equal(r.code, 0, r.stderr);
    await waitStatus(ids[1], 'canceled', 1000);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload happened');
  });

  await t.test('opened while PostgreSQL is down (the stream answers 503), the page keeps retrying and catches up', async () => {
    await closePool();
    stopPostgres();
    try {
      await page.reload(); // a fresh EventSource meets a 503: the browser gives up, the page does not
      await page.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 5000 });
      await page.waitForTimeout(2500);
      assert.equal(await page.getAttribute('#conn', 'data-state'), 'reconnecting');
      assert.equal(await page.locator('#app-error').isVisible(), false);
    } finally {
      startPostgres();
    }
    await sql('select herald.transition($1, $2)', [ids[1], 'pending']);
    await waitStatus(ids[1], 'pending', 10000);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 5000 });
    await waitStatus(ids[0], 'completed', 1000); // the snapshot brought the rest back
    const rows = await page.locator('#reports-body tr[data-report-id]').evaluateAll((trs) => trs.map((tr) => tr.dataset.reportId));
    assert.deepEqual(rows, ids);
  });

  await t.test('history on demand lists the versions with times', async () => {
    const button = page.getByRole('button', { name: `Show history of report ${ids[0]}` });
    await button.click();
    assert.equal(await button.getAttribute('aria-expanded'), 'true');
    const rows = page.locator(`#history-${ids[0]} tbody tr`);
    await page.waitForFunction((id) => document.querySelectorAll(`#history-${id} tbody tr`).length === 4, ids[0], { timeout: 2000 });
    const cells = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.deepEqual(cells.map((c) => c.slice(0, 2)), [['1', 'pending'], ['2', 'queued'], ['3', 'processing'], ['4', 'completed']]);
    for (const c of cells) assert.ok(c[3].length > 0, 'a time is shown');
  });

  await t.test('status colours are the seed\'s and their text is readable (contrast ≥ 4.5)', async () => {
    const colours = await page.evaluate(() => {
      const lum = (rgb) => {
        const [r, g, b] = rgb.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map((v) => {
          v /= 255;
          return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const out = {};
      for (const s of ['pending', 'queued', 'processing', 'canceled', 'failed', 'completed']) {
        const el = document.createElement('span');
        el.className = `status status-${s}`;
        el.textContent = s;
        document.body.append(el);
        const cs = getComputedStyle(el);
        const [a, b] = [lum(cs.color), lum(cs.backgroundColor)].sort((x, y) => y - x);
        out[s] = { bg: cs.backgroundColor, contrast: (a + 0.05) / (b + 0.05) };
        el.remove();
      }
      return out;
    });
    const hue = (rgb) => {
      const [r, g, b] = rgb.match(/\d+/g).slice(0, 3).map(Number);
      return { r, g, b };
    };
    for (const [s, c] of Object.entries(colours)) assert.ok(c.contrast >= 4.5, `${s}: contrast ${c.contrast.toFixed(2)}`);
    const { pending, queued, processing, canceled, failed, completed } = Object.fromEntries(
      Object.entries(colours).map(([k, v]) => [k, hue(v.bg)]));
    assert.ok(pending.r > 200 && pending.g > 200 && pending.b < 120, 'pending is yellow');
    assert.ok(queued.r > 200 && queued.g > 100 && queued.g < 180 && queued.b < 100, 'queued is orange');
    assert.ok(processing.g > 200 && processing.r < processing.g && processing.b < processing.g, 'processing is light green');
    assert.ok(canceled.r > 230 && canceled.g > 150 && canceled.b > 150 && canceled.g < canceled.r, 'canceled is light red');
    assert.ok(failed.r > 150 && failed.g < 60 && failed.b < 60, 'failed is red');
    assert.ok(completed.g > completed.r && completed.g > completed.b && completed.g < 180, 'completed is green');
  });

  await t.test('a screenshot of the page is written', async () => {
    const file = path.join(OUT, 'reports_page.png');
    rmSync(file, { force: true });
    await page.screenshot({ path: file, fullPage: true });
    assert.ok(statSync(file).size > 5000);
  });

  assert.deepEqual(pageErrors, []);
});
