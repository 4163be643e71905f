// sessions_api: seed 002's read side — GET /session/<UUID> and the GET /database_events SSE
// stream of every stored session entry (live, resumable, one doorbell per uploaded batch).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { BASE, sql, client, closePool, waitFor, sleep } from './lib/env.mjs';
import { SSEStream } from './lib/sse.mjs';
import { WSClient } from './lib/ws.mjs';

after(closePool);

const T0 = 1700000000000;
const uuid = () => crypto.randomUUID();
const start = (sid, ts = T0) => ({ timestamp: ts, type: 'SESSION_START', session_id: sid });
const ev = (name, ts) => ({ timestamp: ts, type: 'EVENT', name });
const end = (sid, ts) => ({ timestamp: ts, type: 'SESSION_END', session_id: sid });

async function upload(sid, batches) {
  const c = await WSClient.open(`/ws?sessionId=${sid}`);
  const replies = [];
  for (const b of batches) replies.push(await c.reply(b));
  c.terminate();
  return replies;
}

const ofSession = (s, sid) => s.dataEvents().filter((e) => JSON.parse(e.data).session_id === sid);

test('GET /session/<id>: 400 for a non-UUID, 404 for an unknown session, JSON errors', async () => {
  for (const p of ['/session/', '/session', '/session/xyz', `/session/${uuid()}x`, `/session/${uuid().slice(1)}`]) {
    const res = await fetch(`${BASE}${p}`);
    assert.equal(res.status, 400, p);
    assert.match(res.headers.get('content-type'), /application\/json/);
    assert.equal(typeof (await res.json()).error, 'string');
  }
  const sid = uuid();
  const res = await fetch(`${BASE}/session/${sid}`);
  assert.equal(res.status, 404);
  assert.match((await res.json()).error, /unknown session/);
  const post = await fetch(`${BASE}/session/${sid}`, { method: 'POST' });
  assert.equal(post.status, 405);
});

test('GET /session/<id>: a session with no events yet is not unknown', async () => {
  const sid = uuid();
  assert.deepEqual(await upload(sid, [[start(sid)]]), [{ message: 'ack', stored: 1 }]);
  const res = await fetch(`${BASE}/session/${sid.toUpperCase()}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  assert.equal(await res.text(), `{"type":"SESSION","start":${T0},"end":null,"children":[]}`);
});

test('GET /database_events: every stored entry, live, in order, nothing of refused messages', async () => {
  const s = await SSEStream.open(`${BASE}/database_events`);
  assert.equal(s.status, 200);
  assert.match(s.headers['content-type'], /^text\/event-stream/);
  assert.equal(s.headers['cache-control'], 'no-cache');
  await s.waitFor((x) => x.events.some((e) => e.retry !== undefined), 5000, 'the retry field');
  const sid = uuid();
  const replies = await upload(sid, [
    [start(sid), ev('alpha', T0 + 3), ev('beta', T0 + 1)],
    [ev('gamma', 1.5)], // refused
    [ev('alpha', T0 + 2), end(sid, T0 + 9)],
  ]);
  assert.deepEqual(replies.map((r) => r.message ?? 'error'), ['ack', 'error', 'bye']);
  await s.waitFor((x) => ofSession(x, sid).length === 5, 5000, 'the 5 entries');
  const got = ofSession(s, sid);
  assert.ok(got.every((e) => e.event === 'message'));
  const ids = got.map((e) => Number(e.id));
  assert.deepEqual(ids, ids.map((_, i) => ids[0] + i), 'consecutive ids');
  const data = got.map((e) => JSON.parse(e.data));
  assert.deepEqual(data.map(({ type, timestamp, name }) => ({ type, timestamp, name })), [
    { type: 'SESSION_START', timestamp: T0, name: undefined },
    { type: 'EVENT', timestamp: T0 + 3, name: 'alpha' },
    { type: 'EVENT', timestamp: T0 + 1, name: 'beta' },
    { type: 'EVENT', timestamp: T0 + 2, name: 'alpha' },
    { type: 'SESSION_END', timestamp: T0 + 9, name: undefined },
  ]);
  // event_id is the stored row's id
  const rows = await sql('select event_id::int as id from herald.session_events where session_id = $1 order by event_id', [sid]);
  assert.deepEqual(data.filter((d) => d.type === 'EVENT').map((d) => d.event_id), rows.map((r) => r.id));
  s.close();
});

test('GET /database_events resumes after Last-Event-ID with no duplicate and no hole', async () => {
  const sid = uuid();
  await upload(sid, [[start(sid), ...Array.from({ length: 10 }, (_, i) => ev(`r${i}`, T0 + i))]]);
  const [{ seq }] = await sql(`select min(seq)::int as seq from herald.messages where stream = 'database_events' and strpos(data, $1) > 0`, [sid]);
  const resumeAfter = seq + 4;
  const s = await SSEStream.open(`${BASE}/database_events`, { 'last-event-id': String(resumeAfter) });
  await s.waitFor((x) => ofSession(x, sid).length === 6, 5000, 'the 6 entries after the resume point');
  const got = s.dataEvents();
  assert.equal(Number(got[0].id), resumeAfter + 1);
  assert.deepEqual(ofSession(s, sid).map((e) => JSON.parse(e.data).name), ['r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
  // then live
  await upload(sid, [[ev('live', T0 + 50)]]);
  await s.waitFor((x) => ofSession(x, sid).length === 7, 5000, 'the live entry');
  s.close();
  const bad = await fetch(`${BASE}/database_events`, { headers: { 'last-event-id': 'abc' } });
  assert.equal(bad.status, 400);
});

test('GET /database_events: concurrent uploads all arrive, seq without holes', async () => {
  const s = await SSEStream.open(`${BASE}/database_events`);
  await s.waitFor((x) => x.events.some((e) => e.retry !== undefined), 5000, 'the retry field');
  const sids = Array.from({ length: 6 }, uuid);
  await Promise.all(sids.map((sid) => upload(sid, [
    [start(sid), ev('a', T0 + 1)],
    [ev('b', T0 + 2), ev('c', T0 + 3)],
    [end(sid, T0 + 4)],
  ])));
  await s.waitFor((x) => sids.every((sid) => ofSession(x, sid).length === 5), 5000, 'every entry of 6 sessions');
  const ids = s.dataEvents().map((e) => Number(e.id));
  assert.deepEqual(ids, ids.map((_, i) => ids[0] + i));
  for (const sid of sids) {
    assert.deepEqual(ofSession(s, sid).map((e) => JSON.parse(e.data).type), ['SESSION_START', 'EVENT', 'EVENT', 'EVENT', 'SESSION_END']);
  }
  s.close();
});

test('one batch rings the doorbell once, whatever its size', async () => {
  const listener = await client();
  const notes = [];
  listener.on('notification', (n) => { if (n.channel === 'herald' && !n.payload.includes('"ping"')) notes.push(JSON.parse(n.payload)); });
  await listener.query('LISTEN herald');
  const sid = uuid();
  const replies = await upload(sid, [[start(sid), ...Array.from({ length: 200 }, (_, i) => ev(`d${i % 7}`, T0 + i))]]);
  assert.deepEqual(replies, [{ message: 'ack', stored: 201 }]);
  await waitFor(() => notes.some((n) => n.stream === 'database_events'), { what: 'the doorbell' });
  await sleep(200);
  const mine = notes.filter((n) => n.stream === 'database_events');
  assert.equal(mine.length, 1, JSON.stringify(mine));
  const [{ last }] = await sql(`select max(seq)::int as last from herald.messages where stream = 'database_events' and strpos(data, $1) > 0`, [sid]);
  assert.equal(mine[0].seq, last);
  await listener.end();
});
