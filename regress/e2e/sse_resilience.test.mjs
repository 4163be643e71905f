// sse_resilience: the SSE gateway across restarts — Last-Event-ID replay across a sidecar
// restart and a PostgreSQL restart, open streams surviving PostgreSQL's absence (503 JSON for
// requests meanwhile), and a third-party EventSource client across a forced disconnect.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EventSource } from 'eventsource';
import { BASE, sql, closePool, sleep, waitFor, restartSidecar, restartPostgres, stopPostgres, startPostgres,
  stopSidecar, startSidecar } from './lib/env.mjs';
import { SSEStream } from './lib/sse.mjs';

after(closePool);

const user = (p = 'r') => `${p}-${randomUUID().slice(0, 8)}`;
const post = (username, body, v = 'v2') =>
  fetch(`${BASE}/${v}/message?username=${encodeURIComponent(username)}`, { method: 'POST', body });
const open = (username, headers = {}) => SSEStream.open(`${BASE}/v2/sse?username=${encodeURIComponent(username)}`, headers);

/** assertReplays reconnects with Last-Event-ID and checks the replay is exactly want, nothing more. */
async function assertReplays(username, lastEventId, want) {
  const r = await open(username, { 'last-event-id': lastEventId });
  try {
    await r.waitForEvents(want.length);
    await sleep(300);
    assert.deepEqual(r.dataEvents().map((e) => e.data), want);
  } finally {
    r.close();
  }
}

/** postWhenUp retries a POST until the sidecar has its database again (204). */
async function postWhenUp(username, body) {
  await waitFor(async () => {
    try { return (await post(username, body)).status === 204; } catch { return false; }
  }, { timeout: 20000, interval: 100, what: `POST ${body} to succeed` });
}

test('Last-Event-ID replays exactly the missed three across a sidecar restart', async () => {
  const u = user();
  const s = await (await open(u)).ready();
  for (const m of ['one', 'two']) assert.equal((await post(u, m)).status, 204);
  const seen = await s.waitForEvents(2);
  restartSidecar();
  await s.waitFor((x) => x.closed, 5000, 'the old stream to end with the old process');
  for (const m of ['three', 'four', 'five']) assert.equal((await post(u, m)).status, 204);
  await assertReplays(u, seen[1].id, ['three', 'four', 'five']);
});

test('an open stream survives a PostgreSQL restart and gets what was sent right after; Last-Event-ID replays across it', async () => {
  const u = user();
  const s = await (await open(u)).ready();
  assert.equal((await post(u, 'before')).status, 204);
  const [before] = await s.waitForEvents(1);
  await restartPostgres();
  // sent as soon as the database is back, maybe before the sidecar's LISTEN is: the catch-up
  // read after the LISTEN reconnect must find them
  for (const m of ['after1', 'after2', 'after3']) await sql('SELECT herald.send($1, $2)', [`user:${u}`, m]);
  await s.waitForEvents(4, 20000);
  assert.equal(s.closed, false, 'the stream stayed open');
  assert.deepEqual(s.dataEvents().map((e) => e.data), ['before', 'after1', 'after2', 'after3']);
  s.close();
  await assertReplays(u, before.id, ['after1', 'after2', 'after3']);
});

test('while PostgreSQL is down: 503 JSON for requests that need it, open streams stay open and resume', async () => {
  const u = user();
  const s = await (await open(u)).ready();
  assert.equal((await post(u, 'first')).status, 204);
  await s.waitForEvents(1);
  await closePool();
  stopPostgres();
  try {
    const p = await waitFor(async () => { const r = await post(u, 'lost'); return r.status === 503 ? r : null; },
      { timeout: 10000, what: '503 from POST while the database is down' });
    assert.match(p.headers.get('content-type'), /application\/json/);
    assert.equal(typeof (await p.json()).error, 'string');
    const g = await fetch(`${BASE}/v2/sse?username=${u}`);
    assert.equal(g.status, 503);
    assert.equal(typeof (await g.json()).error, 'string');
    const h = await fetch(`${BASE}/healthcheck`);
    assert.equal(h.status, 200, 'alive');
    const r = await fetch(`${BASE}/readyz`);
    assert.equal(r.status, 503, 'but not ready');
    assert.equal((await r.json()).database, false);
    await sleep(500);
    assert.equal(s.closed, false, 'the open stream stays open');
  } finally {
    startPostgres();
  }
  await postWhenUp(u, 'second');
  await waitFor(async () => (await fetch(`${BASE}/readyz`)).status === 200, { timeout: 20000, what: '/readyz 200 again' });
  assert.equal((await post(u, 'third')).status, 204);
  await s.waitForEvents(3, 20000);
  assert.deepEqual(s.dataEvents().map((e) => e.data), ['first', 'second', 'third']);
  s.close();
});

test('npm eventsource gets every message, once and in order, across a forced disconnect', async () => {
  const u = user();
  const got = [];
  const es = new EventSource(`${BASE}/v2/sse?username=${encodeURIComponent(u)}`);
  es.onmessage = (e) => got.push({ id: e.lastEventId, data: e.data });
  let opens = 0;
  es.onopen = () => { opens++; };
  try {
    await waitFor(() => opens === 1, { what: 'EventSource open' });
    for (const m of ['a1', 'a2', 'a3']) assert.equal((await post(u, m)).status, 204);
    await waitFor(() => got.length === 3, { what: 'three messages' });
    stopSidecar(); // forced disconnect
    for (const m of ['b1', 'b2', 'b3']) await sql('SELECT herald.send($1, $2)', [`user:${u}`, m]);
    startSidecar();
    await waitFor(() => opens === 2, { timeout: 15000, what: 'EventSource reconnect' });
    for (const m of ['c1', 'c2']) assert.equal((await post(u, m)).status, 204);
    await waitFor(() => got.length >= 8, { timeout: 10000, what: 'eight messages' });
    await sleep(300);
    assert.deepEqual(got.map((e) => e.data), ['a1', 'a2', 'a3', 'b1', 'b2', 'b3', 'c1', 'c2']);
    const ids = got.map((e) => Number(e.id));
    for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1] + 1);
  } finally {
    es.close();
  }
});

test('a LISTEN connection that goes deaf is found by the NOTIFY round trip and replaced; streams catch up', async () => {
  const u = user();
  const s = await (await open(u)).ready();
  const listener = async () => (await sql(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN v3_messages' AND backend_type = 'client backend'"))
    .map((r) => r.pid);
  const before = await waitFor(async () => { const p = await listener(); return p.length === 1 ? p[0] : null; },
    { what: 'the sidecar LISTEN backend' });
  process.kill(before, 'SIGSTOP'); // alive but deaf: no error ever reaches the sidecar
  try {
    await sql('SELECT herald.send($1, $2)', [`user:${u}`, 'while deaf']);
    // HERALD_LISTEN_CHECK_MS is 1000 in the e2e run: the deadline is 2 s after a check
    await waitFor(async () => (await listener()).some((p) => p !== before), { timeout: 15000, what: 'a new LISTEN backend' });
  } finally {
    process.kill(before, 'SIGCONT');
  }
  await s.waitForEvents(1, 10000);
  assert.equal((await post(u, 'after')).status, 204);
  await s.waitForEvents(2, 5000);
  assert.deepEqual(s.dataEvents().map((e) => e.data), ['while deaf', 'after']);
  s.close();
});
