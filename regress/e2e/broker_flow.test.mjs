// broker_flow: seed 001 end to end — users, login, scheduled events over GET /events (SSE),
// cancellation, the event log, the snapshot on connect and resuming with Last-Event-ID.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, sql, closePool, sleep, stopSidecar, startSidecar } from './lib/env.mjs';
import { SSEStream } from './lib/sse.mjs';
import { request, newUser, uniq, decodeJwt, nowSec } from './lib/broker.mjs';

after(closePool);

const STATUS_MS = Number(process.env.HERALD_EVENTS_STATUS_MS || 10000);

/** mine returns the data events of stream s named name, parsed. */
const mine = (s, name) => s.dataEvents().filter((e) => e.event === name).map((e) => ({ ...e, json: JSON.parse(e.data) }));

test('the whole flow: user, login, /events, scheduled and immediate events, cancel, event log', async () => {
  const u = await newUser('flow');
  // The token: HS256, sub = the user id, exp = now + EXPIRY.
  const { header, claims } = decodeJwt(u.jwt);
  assert.equal(header.alg, 'HS256');
  assert.equal(claims.sub, u.id);
  assert.ok(claims.exp > nowSec() && claims.exp <= nowSec() + Number(process.env.EXPIRY || 3600) + 2, `exp ${claims.exp}`);
  assert.equal((await sql('select username from herald.users where id = $1', [u.id]))[0].username, u.username);

  const s = await SSEStream.open(`${BASE}/events`);
  try {
    assert.equal(s.status, 200);
    assert.match(s.headers['content-type'], /^text\/event-stream/);
    const name = uniq('price');
    const t = nowSec();

    // Inserted first but due later (in one to two seconds).
    const later = await request('POST', '/insert', { token: u.jwt, body: { event: name, timestamp: t + 2, data: { v: 2 } } });
    assert.equal(later.status, 200, later.text);
    assert.match(later.json.id, /^[0-9a-f-]{36}$/);
    // Due now: published at once.
    const now = await request('POST', '/insert', { token: u.jwt, body: { event: name, timestamp: t, data: { v: 1 } } });
    assert.equal(now.status, 200, now.text);
    // A third, cancelled before its time: it must never arrive.
    const third = await request('POST', '/insert', { token: u.jwt, body: { event: name, timestamp: t + 4, data: { v: 3 } } });
    assert.equal(third.status, 200, third.text);
    const cancel = await request('GET', `/events/${third.json.id}/cancel`, { token: u.jwt });
    assert.equal(cancel.status, 200, cancel.text);
    assert.deepEqual(cancel.json, { id: third.json.id, cancelled: true });
    const again = await request('GET', `/events/${third.json.id}/cancel`, { token: u.jwt });
    assert.equal(again.status, 409, again.text);
    assert.equal(typeof again.json.error, 'string');

    await s.waitFor((x) => mine(x, name).length >= 2, 6000, 'both events');
    const arrivedAt = Date.now();
    const got = mine(s, name);
    assert.deepEqual(got.map((e) => e.json), [{ v: 1 }, { v: 2 }], 'due-now first, then the scheduled one');
    assert.ok(Number(got[0].id) < Number(got[1].id), `ids ascend: ${got[0].id} ${got[1].id}`);
    assert.ok(arrivedAt >= (t + 2) * 1000 - 50, 'the scheduled event is not published early');

    // A published event cannot be cancelled; an unknown one is 404.
    const late = await request('GET', `/events/${now.json.id}/cancel`, { token: u.jwt });
    assert.equal(late.status, 409, late.text);
    const unknown = await request('GET', '/events/00000000-0000-4000-8000-000000000000/cancel', { token: u.jwt });
    assert.equal(unknown.status, 404, unknown.text);
    const notUuid = await request('GET', '/events/not-a-uuid/cancel', { token: u.jwt });
    assert.equal(notUuid.status, 404, notUuid.text);
    // Another user's event looks unknown.
    const other = await newUser('flow-other');
    const foreign = await request('GET', `/events/${later.json.id}/cancel`, { token: other.jwt });
    assert.equal(foreign.status, 404, foreign.text);

    // The cancelled one never arrives (wait until 1.5 s past its time).
    const wait = (t + 4) * 1000 + 1500 - Date.now();
    if (wait > 0) await sleep(wait);
    assert.deepEqual(mine(s, name).map((e) => e.json), [{ v: 1 }, { v: 2 }]);

    // The log: every version, ascending by timestamp, with its state.
    const log = await request('GET', `/events/${encodeURIComponent(name)}`, { token: u.jwt });
    assert.equal(log.status, 200, log.text);
    assert.match(log.headers.get('content-type'), /application\/json/);
    assert.deepEqual(log.json.map((r) => [r.id, r.user_id, r.event, r.timestamp, r.published, r.cancelled, r.data]), [
      [now.json.id, u.id, name, t, true, false, { v: 1 }],
      [later.json.id, u.id, name, t + 2, true, false, { v: 2 }],
      [third.json.id, u.id, name, t + 4, false, true, { v: 3 }],
    ]);
    const none = await request('GET', `/events/${uniq('nothing')}`, { token: u.jwt });
    assert.equal(none.status, 200);
    assert.deepEqual(none.json, []);

    // Liveness frames: event internal_status, no id (they do not move Last-Event-ID).
    await s.waitFor((x) => x.dataEvents().some((e) => e.event === 'internal_status'), STATUS_MS + 3000, 'internal_status');
    const st = s.dataEvents().find((e) => e.event === 'internal_status');
    assert.equal(st.id, undefined);
    assert.equal(JSON.parse(st.data).status, 'ok');

    // A new subscriber starts with the latest version of every event: ours once, v2.
    const pos = async () => Number((await sql("select herald.stream_position('events') as p"))[0].p);
    const posBefore = await pos();
    const s2 = await SSEStream.open(`${BASE}/events`);
    try {
      const names = await sql('select count(distinct event)::int as n from herald.events where published_at is not null');
      await s2.waitFor((x) => x.dataEvents().filter((e) => e.event !== 'internal_status').length >= names[0].n, 5000, 'the snapshot');
      const snap = mine(s2, name);
      assert.equal(snap.length, 1, JSON.stringify(snap));
      assert.deepEqual(snap[0].json, { v: 2 });
      const last = s2.dataEvents().filter((e) => e.event !== 'internal_status').at(-1);
      // the stream position when the snapshot was taken (between the positions read before and after)
      const posAfter = await pos();
      assert.ok(Number(last.id) >= posBefore && Number(last.id) <= posAfter && posBefore >= Number(got[1].id),
        `the snapshot's last frame carries the stream position (${last.id}, position ${posBefore}..${posAfter})`);
    } finally {
      s2.close();
    }
  } finally {
    s.close();
  }
});

test('subscribers connecting while events are published get each one exactly once', async () => {
  const u = await newUser('race');
  const name = uniq('race');
  const N = 60;
  const streams = [];
  const publisher = (async () => {
    for (let v = 1; v <= N; v++) {
      const r = await request('POST', '/insert', { token: u.jwt, body: { event: name, timestamp: nowSec() - 1, data: { v } } });
      assert.equal(r.status, 200, r.text);
    }
  })();
  // Open a subscriber every few milliseconds while the publisher runs.
  while (streams.length < 12) {
    streams.push(await SSEStream.open(`${BASE}/events`));
    await sleep(15);
  }
  await publisher;
  try {
    const firsts = [];
    for (const [i, s] of streams.entries()) {
      await s.waitFor((x) => mine(x, name).some((e) => e.json.v === N), 5000, `subscriber ${i}: the last event`);
      const vs = mine(s, name).map((e) => e.json.v);
      // The snapshot gives the current version (or nothing yet), then every later one, once.
      assert.ok(vs.every((v, k) => k === 0 || v === vs[k - 1] + 1), `subscriber ${i}: ${vs}`);
      assert.equal(vs.at(-1), N);
      firsts.push(vs[0]);
      const ids = s.dataEvents().filter((e) => e.id !== undefined).map((e) => Number(e.id));
      assert.ok(ids.every((id, k) => k === 0 || id > ids[k - 1]), `subscriber ${i}: ids ${ids}`);
    }
    assert.ok(new Set(firsts).size > 1, `subscribers joined at different points: ${firsts}`);
  } finally {
    streams.forEach((s) => s.close());
  }
});

test('a subscriber that reconnects with Last-Event-ID misses nothing', async () => {
  const u = await newUser('resume');
  const name = uniq('resume');
  const insert = (v) => request('POST', '/insert', { token: u.jwt, body: { event: name, timestamp: nowSec() - 1, data: { v } } });

  const s1 = await SSEStream.open(`${BASE}/events`);
  assert.equal((await insert(1)).status, 200);
  await s1.waitFor((x) => mine(x, name).length === 1, 5000, 'first event');
  const lastId = mine(s1, name)[0].id;
  assert.match(lastId, /^\d+$/);
  s1.close();

  // Published while nobody listens.
  for (let v = 2; v <= 4; v++) assert.equal((await insert(v)).status, 200);

  const s2 = await SSEStream.open(`${BASE}/events`, { 'last-event-id': lastId });
  try {
    assert.equal(s2.status, 200);
    assert.equal((await insert(5)).status, 200);
    await s2.waitFor((x) => mine(x, name).length >= 4, 5000, 'the missed events and the live one');
    assert.deepEqual(mine(s2, name).map((e) => e.json.v), [2, 3, 4, 5]);
    // Nothing from before lastId (no snapshot when resuming), ids strictly ascending.
    const ids = s2.dataEvents().filter((e) => e.id !== undefined).map((e) => Number(e.id));
    assert.ok(ids.every((id, i) => id > Number(lastId) && (i === 0 || id > ids[i - 1])), `ids ${ids}`);
  } finally {
    s2.close();
  }

  // The query-parameter form (EventSource polyfills) behaves the same.
  const s3 = await SSEStream.open(`${BASE}/events?lastEventId=${lastId}`);
  try {
    await s3.waitFor((x) => mine(x, name).length >= 4, 5000, 'replay via ?lastEventId');
    assert.deepEqual(mine(s3, name).map((e) => e.json.v), [2, 3, 4, 5]);
  } finally {
    s3.close();
  }

  const bad = await request('GET', '/events', { headers: { 'last-event-id': 'abc' } });
  assert.equal(bad.status, 400, bad.text);
});

test('across a sidecar restart: tokens stay valid and Last-Event-ID resumes without a hole', async () => {
  const u = await newUser('restart');
  const name = uniq('restart');
  const s1 = await SSEStream.open(`${BASE}/events`);
  const first = await request('POST', '/insert', { token: u.jwt, body: { event: name, timestamp: nowSec(), data: { v: 1 } } });
  assert.equal(first.status, 200, first.text);
  await s1.waitFor((x) => mine(x, name).length === 1, 5000, 'first event');
  const lastId = mine(s1, name)[0].id;

  stopSidecar();
  try {
    await s1.waitFor((x) => x.closed, 5000, 'the stream to end with the sidecar');
    // Published while the sidecar is away: one at once, one by the database's worker.
    await sql(`select herald.insert_event($1, $2, now(), '{"v":2}')`, [u.id, name]);
    await sql(`select herald.insert_event($1, $2, now() + interval '300 milliseconds', '{"v":3}')`, [u.id, name]);
    await sleep(600);
  } finally {
    startSidecar();
  }
  const s2 = await SSEStream.open(`${BASE}/events`, { 'last-event-id': lastId });
  try {
    assert.equal(s2.status, 200);
    const after = await request('POST', '/insert', { token: u.jwt, body: { event: name, timestamp: nowSec(), data: { v: 4 } } });
    assert.equal(after.status, 200, `the token issued before the restart still works: ${after.text}`);
    await s2.waitFor((x) => mine(x, name).length >= 3, 5000, 'the events published during the restart, then the live one');
    assert.deepEqual(mine(s2, name).map((e) => e.json.v), [2, 3, 4]);
  } finally {
    s2.close();
  }
});
