// sessions_ws: seed 002's WebSocket upload (GET /ws?sessionId=<UUID>), checked with real
// clients. Every refused input is checked twice: for the answer, and in the database for what
// was (not) stored — the session row, its events and its database_events stream messages.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { BASE, sql, client, closePool, sleep, waitFor, stopPostgres, startPostgres } from './lib/env.mjs';
import { WSClient, frame, rawUpgrade } from './lib/ws.mjs';

after(closePool);

const T0 = 1624422533298;
const uuid = () => crypto.randomUUID();
const start = (sid, ts = T0) => ({ timestamp: ts, type: 'SESSION_START', session_id: sid });
const ev = (name, ts = T0) => ({ timestamp: ts, type: 'EVENT', name });
const end = (sid, ts = T0 + 1000) => ({ timestamp: ts, type: 'SESSION_END', session_id: sid });

/** stored counts what the database holds for a session. */
async function stored(sid) {
  const [r] = await sql(`select
      (select count(*) from herald.sessions where session_id = $1)::int as sessions,
      (select count(*) from herald.session_events where session_id = $1)::int as events,
      (select count(*) from herald.messages where stream = 'database_events' and strpos(data, $1::text) > 0)::int as streamed`, [sid]);
  return r;
}
const NOTHING = { sessions: 0, events: 0, streamed: 0 };

async function session(sid) {
  const res = await fetch(`${BASE}/session/${sid}`);
  return { status: res.status, text: await res.text() };
}

test('the seed flow: a session uploaded in two messages reads back exactly', async () => {
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  const a1 = await c.reply([start(sid), ev('event2', T0 + 5), ev('test', T0 + 2), ev('event2', T0 + 2)]);
  assert.deepEqual(a1, { message: 'ack', stored: 4 });
  const newName = `name-${uuid()}`; // a name never seen before is added, not dropped
  const a2 = await c.reply([ev(newName, T0 + 1), ev('test', T0 + 9), end(sid, T0 + 10)]);
  assert.deepEqual(a2, { message: 'bye', stored: 3 });
  assert.deepEqual(await c.closed(), { code: 1000, reason: 'bye' });

  const r = await session(sid);
  assert.equal(r.status, 200);
  // exactly: key order, ms, children in time order (upload order among equal timestamps)
  assert.equal(r.text, JSON.stringify({
    type: 'SESSION', start: T0, end: T0 + 10, children: [
      { type: 'EVENT', timestamp: T0 + 1, name: newName },
      { type: 'EVENT', timestamp: T0 + 2, name: 'test' },
      { type: 'EVENT', timestamp: T0 + 2, name: 'event2' },
      { type: 'EVENT', timestamp: T0 + 5, name: 'event2' },
      { type: 'EVENT', timestamp: T0 + 9, name: 'test' },
    ],
  }));
  assert.deepEqual(await stored(sid), { sessions: 1, events: 5, streamed: 7 });
  const names = await sql('select count(*)::int as n from herald.session_event_names where event_name = $1', [newName]);
  assert.equal(names[0].n, 1);
});

test('the seed example: one message from SESSION_START to SESSION_END', async () => {
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  const msg = [start(sid), ev('event2'), ev('test'), ev('event2'), end(sid, T0)];
  assert.deepEqual(await c.reply(msg), { message: 'bye', stored: 5 });
  assert.equal((await c.closed()).code, 1000);
  const r = JSON.parse((await session(sid)).text);
  assert.deepEqual(r, { type: 'SESSION', start: T0, end: T0, children: ['event2', 'test', 'event2'].map((name) => ({ type: 'EVENT', timestamp: T0, name })) });
});

test('a bad or missing sessionId is refused with 400 before the upgrade', async () => {
  for (const q of ['', '?sessionId=', '?sessionId=not-a-uuid', '?sessionId=0d856b46-48cd-4fba-946b-53d15b7b43e']) {
    await assert.rejects(WSClient.open(`/ws${q}`), (e) => {
      assert.equal(e.status, 400, q);
      assert.match(e.headers['content-type'], /application\/json/);
      assert.match(JSON.parse(e.body).error, /sessionId/);
      return true;
    });
  }
  const plain = await fetch(`${BASE}/ws?sessionId=${uuid()}`); // no upgrade
  assert.equal(plain.status, 400);
  assert.match((await plain.json()).error, /WebSocket/);
});

// Each refused message: its answer, the connection still open (a good message afterwards is
// stored), and nothing of the refused message in the database.
const refusals = [
  ['an object instead of an array', (sid) => ({ timestamp: T0, type: 'SESSION_START', session_id: sid }), /JSON array/, null],
  ['not JSON at all', () => '[{"type":', /not valid JSON/, null],
  ['a fractional timestamp', (sid) => [start(sid), ev('a', T0 + 0.5)], /whole number of milliseconds/, 1],
  ['a timestamp that is a string', (sid) => [start(sid), { ...ev('a'), timestamp: String(T0) }], /timestamp/, 1],
  ['an unknown type', (sid) => [start(sid), ev('a'), { timestamp: T0, type: 'SESSION_PAUSE' }], /unknown entry type/, 2],
  ['an EVENT without a name', (sid) => [start(sid), { timestamp: T0, type: 'EVENT' }], /needs a name/, 1],
  ['an EVENT before SESSION_START', (sid) => [ev('a'), start(sid)], /first entry must be SESSION_START/, 0],
  ['a SESSION_START for another session', () => [start(uuid())], /is for session/, 0],
  ['an entry of another session', (sid) => [start(sid), { ...ev('a'), session_id: uuid() }], /is for session/, 1],
  ['two SESSION_STARTs', (sid) => [start(sid), start(sid)], /already started/, 1],
  ['an entry after SESSION_END', (sid) => [start(sid), end(sid), ev('late', T0 + 2000)], /after SESSION_END/, 2],
  ['two SESSION_ENDs', (sid) => [start(sid), end(sid), end(sid)], /already ended/, 2],
  ['an end before the start', (sid) => [start(sid), end(sid, T0 - 1)], /end before it starts/, 1],
];
for (const [what, make, error, index] of refusals) {
  test(`refused, nothing stored, connection kept: ${what}`, async () => {
    const sid = uuid();
    const c = await WSClient.open(`/ws?sessionId=${sid}`);
    const bad = make(sid);
    const r = await c.reply(typeof bad === 'string' ? bad : bad);
    assert.match(r.error, error);
    assert.equal(r.index, index);
    assert.deepEqual(Object.keys(r), ['error', 'index']);
    assert.deepEqual(await stored(sid), NOTHING);
    assert.equal(c.close, null);
    assert.deepEqual(await c.reply([start(sid), ev('ok')]), { message: 'ack', stored: 2 });
    assert.deepEqual(await stored(sid), { sessions: 1, events: 1, streamed: 2 });
    c.terminate();
  });
}

test('a refused message stores none of its good entries; later batches are checked against the stored session', async () => {
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  assert.deepEqual(await c.reply([start(sid), ev('a')]), { message: 'ack', stored: 2 });
  const r = await c.reply([ev('b'), ev('c'), ev('d'), { timestamp: 'soon', type: 'EVENT', name: 'e' }, ev('f')]);
  assert.equal(r.index, 3);
  assert.deepEqual(await stored(sid), { sessions: 1, events: 1, streamed: 2 });
  assert.match((await c.reply([start(sid)])).error, /already started/);
  assert.deepEqual(await c.reply([ev('b'), end(sid)]), { message: 'bye', stored: 2 });
  assert.equal((await c.closed()).code, 1000);
  // a second SESSION_END, on a new connection, for the ended session
  const c2 = await WSClient.open(`/ws?sessionId=${sid}`);
  const again = await c2.reply([end(sid, T0 + 5000)]);
  assert.deepEqual(again, { error: 'session already ended', index: 0 });
  assert.match((await c2.reply([ev('z')])).error, /already ended/);
  c2.terminate();
  assert.deepEqual(await stored(sid), { sessions: 1, events: 2, streamed: 4 });
  const [row] = await sql('select herald.unix_ms(session_end) as e from herald.sessions where session_id = $1', [sid]);
  assert.equal(Number(row.e), T0 + 1000);
});

test('a message over HERALD_WS_MAX_MESSAGE (10 MB) closes with 1009, nothing stored', async () => {
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  const entries = [start(sid)];
  const big = 'x'.repeat(1000);
  while (entries.length < 10500) entries.push(ev(big));
  const text = JSON.stringify(entries);
  assert.ok(text.length > 10 * 1000 * 1000);
  c.send(text);
  const close = await c.closed(15000);
  assert.equal(close.code, 1009);
  assert.deepEqual(c.messages, []);
  assert.deepEqual(await stored(sid), NOTHING);
});

test('a binary frame closes with 1003, nothing stored', async () => {
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  c.send(Buffer.from(JSON.stringify([start(sid)])), { binary: true });
  const close = await c.closed();
  assert.equal(close.code, 1003);
  assert.deepEqual(await stored(sid), NOTHING);
});

test('invalid UTF-8 in a text frame closes with 1007, nothing stored', async () => {
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  const good = Buffer.from(JSON.stringify([start(sid), ev('name-')]));
  const bad = Buffer.concat([good.subarray(0, good.length - 3), Buffer.from([0xc3, 0x28]), good.subarray(good.length - 3)]);
  c.send(bad, { binary: false });
  const close = await c.closed();
  assert.equal(close.code, 1007);
  assert.deepEqual(await stored(sid), NOTHING);
});

test('a client that vanishes mid-message: nothing stored, the server carries on', async () => {
  for (const how of ['end', 'reset']) {
    const sid = uuid();
    const { sock, status } = await rawUpgrade(`/ws?sessionId=${sid}`);
    assert.equal(status, 101);
    const f = frame(JSON.stringify([start(sid), ev('a'), ev('b')]));
    sock.write(f.subarray(0, f.length - 10));
    await sleep(100);
    if (how === 'end') sock.destroy(); else sock.resetAndDestroy();
    await sleep(300);
    assert.deepEqual(await stored(sid), NOTHING, how);
  }
  assert.equal((await fetch(`${BASE}/healthcheck`)).status, 200);
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  assert.deepEqual(await c.reply([start(sid)]), { message: 'ack', stored: 1 });
  c.terminate();
});

test('a client that vanishes right after a whole message: stored whole or not at all', async () => {
  const sids = [];
  for (let i = 0; i < 20; i++) {
    const sid = uuid();
    sids.push(sid);
    const { sock } = await rawUpgrade(`/ws?sessionId=${sid}`);
    sock.write(frame(JSON.stringify([start(sid), ...Array.from({ length: 50 }, (_, k) => ev(`n${k}`, T0 + k))])));
    if (i % 2) sock.resetAndDestroy(); else sock.destroy();
  }
  await sleep(500);
  for (const sid of sids) {
    const s = await stored(sid);
    assert.ok(s.sessions === 0 ? s.events === 0 && s.streamed === 0 : s.events === 50 && s.streamed === 51, JSON.stringify(s));
  }
  assert.equal((await fetch(`${BASE}/healthcheck`)).status, 200);
});

test('a message in fragments is one message; pings are answered', async () => {
  const sid = uuid();
  const { sock, status, rest } = await rawUpgrade(`/ws?sessionId=${sid}`);
  assert.equal(status, 101);
  let got = rest;
  sock.on('data', (d) => { got = Buffer.concat([got, d]); });
  const text = JSON.stringify([start(sid), ev('frag')]);
  sock.write(frame(text.slice(0, 10), { fin: false }));
  await sleep(50);
  sock.write(frame(Buffer.from('hi'), { opcode: 9 })); // a ping between fragments
  sock.write(frame(text.slice(10), { opcode: 0 }));
  await waitFor(() => got.includes('"stored"'), { what: 'the ack' });
  assert.equal(got[0], 0x8a, 'a pong first'); // FIN + pong
  assert.equal(got.subarray(2, 4).toString(), 'hi');
  const ack = got.subarray(4);
  assert.equal(ack[0], 0x81);
  assert.deepEqual(JSON.parse(ack.subarray(2, 2 + ack[1]).toString()), { message: 'ack', stored: 2 });
  sock.destroy();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  c.ws.ping();
  await c.waitFor((x) => x.pongs === 1, 'a pong');
  c.terminate();
});

// lockedSession opens a connection whose session is stored, then holds that session's row lock
// from another transaction so that the connection's next batches wait in PostgreSQL;
// release() commits that transaction.
async function lockedSession() {
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  assert.deepEqual(await c.reply([start(sid)]), { message: 'ack', stored: 1 });
  const locker = await client();
  await locker.query('begin');
  await locker.query('select 1 from herald.sessions where session_id = $1 for update', [sid]);
  return { sid, c, release: async () => { await locker.query('commit'); await locker.end(); } };
}

test('messages of one connection are stored in order, one at a time, each answered in order', async () => {
  // The session's row is locked, so that the first batch waits in PostgreSQL while the others queue.
  const { sid, c, release } = await lockedSession();
  const n = 40;
  for (let i = 0; i < n; i++) c.send(i === 17 ? [ev('bad', 1.5)] : [ev(`m${i}`, T0 + n - i)]);
  await sleep(200);
  assert.equal(c.messages.length, 1);
  await release();
  await c.waitFor((x) => x.messages.length === n + 1, `${n} replies`);
  for (let i = 0; i < n; i++) {
    assert.deepEqual(c.messages[i + 1], i === 17 ? { error: 'timestamp must be a whole number of milliseconds', index: 0 } : { message: 'ack', stored: 1 });
  }
  const ids = await sql(`select n.event_name from herald.session_events e join herald.session_event_names n using (event_name_id)
    where e.session_id = $1 order by e.event_id`, [sid]);
  assert.deepEqual(ids.map((r) => r.event_name), Array.from({ length: n }, (_, i) => `m${i}`).filter((x) => x !== 'm17'));
  c.terminate();
});

test('a client far ahead of its replies is closed with 1008', async () => {
  const { sid, c, release } = await lockedSession();
  for (let i = 0; i < 1100; i++) c.send([ev(`p${i}`)]);
  await sleep(300);
  await release();
  const close = await c.closed();
  assert.equal(close.code, 1008);
  // the batch that was in PostgreSQL was answered before the close; the queued ones were dropped
  assert.deepEqual(c.messages, [{ message: 'ack', stored: 1 }, { message: 'ack', stored: 1 }]);
  assert.deepEqual(await stored(sid), { sessions: 1, events: 1, streamed: 2 });
});

test('an idle connection is closed after HERALD_WS_IDLE_MS', async () => {
  const idle = Number(process.env.HERALD_WS_IDLE_MS || 60000);
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  const t = Date.now();
  assert.deepEqual(await c.reply([start(sid)]), { message: 'ack', stored: 1 });
  const close = await c.closed(idle + 5000);
  assert.deepEqual(close, { code: 1000, reason: 'idle timeout' });
  assert.ok(Date.now() - t >= idle - 50, `closed after ${Date.now() - t} ms`);
});

test('PostgreSQL away: each message is answered with an error, the connection stays, nothing half-stored', async () => {
  const sid = uuid();
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  assert.deepEqual(await c.reply([start(sid)]), { message: 'ack', stored: 1 });
  await closePool();
  stopPostgres();
  try {
    const r = await c.reply([ev('while-down')]);
    assert.match(r.error, /database unavailable/);
    assert.equal(r.index, null);
    assert.equal(c.close, null);
  } finally {
    startPostgres();
  }
  // the sidecar reconnects with backoff; the same connection then stores again
  const ok = await waitFor(async () => {
    const r = await c.reply([ev('after', T0 + 1)]);
    return r.message === 'ack' ? r : null;
  }, { timeout: 20000, interval: 300, what: 'an ack after PostgreSQL came back' });
  assert.deepEqual(ok, { message: 'ack', stored: 1 });
  assert.deepEqual(await stored(sid), { sessions: 1, events: 1, streamed: 2 });
  c.terminate();
});

test('/metrics counts WebSocket traffic', async () => {
  const body = await (await fetch(`${BASE}/metrics`)).text();
  for (const m of ['ws_connections_open', 'ws_messages_total', 'ws_entries_stored_total', 'ws_errors_total']) {
    assert.match(body, new RegExp(`^herald_${m} \\d+$`, 'm'));
  }
  assert.ok(Number(/^herald_ws_entries_stored_total (\d+)$/m.exec(body)[1]) > 0);
});
