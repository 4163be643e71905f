// foundation: the sidecar answers and the database has the extension.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, sql, closePool, waitFor } from './lib/env.mjs';

after(closePool);

test('GET /healthcheck answers 200 OK', async () => {
  const res = await fetch(`${BASE}/healthcheck`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'OK');
});

test('GET /readyz answers 200 with JSON once the database and LISTEN connections are up', async () => {
  const res = await waitFor(async () => { const r = await fetch(`${BASE}/readyz`); return r.status === 200 ? r : null; },
    { what: '/readyz to answer 200' });
  assert.match(res.headers.get('content-type'), /application\/json/);
  assert.deepEqual(await res.json(), { ready: true, database: true, listen: true });
});

test('GET /metrics is Prometheus text', async () => {
  const res = await fetch(`${BASE}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  const body = await res.text();
  assert.match(body, /^# TYPE herald_http_requests_total counter$/m);
  assert.match(body, /^herald_http_requests_total \d+$/m);
});

test('unknown routes answer 404 with a JSON error', async () => {
  const res = await fetch(`${BASE}/no/such/route`);
  assert.equal(res.status, 404);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const body = await res.json();
  assert.equal(typeof body.error, 'string');
});

test('the extension is installed and answers', async () => {
  const rows = await sql('select herald.version() as v');
  assert.match(rows[0].v, /^\d+\.\d+\.\d+$/);
});

test('the scheduler worker runs in the database', async () => {
  // The worker starts with the server; if the database did not exist yet it retries every 5 s.
  await waitFor(async () => (await sql("select count(*)::int as n from pg_stat_activity where backend_type = 'herald scheduler'"))[0].n === 1,
    { timeout: 15000, what: 'the herald scheduler in pg_stat_activity' });
});
