// event_worker: the background worker publishes scheduled Broker events on time (not before),
// never a cancelled one, and, across a PostgreSQL restart, every one exactly once and in order.
// Times are compared on the database's clock (publish_at vs published_at); bounds are
// generous, precision is the benchmark's job (scripts/bench/lateness.sh).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sql, client, closePool, stopPostgres, startPostgres, sleep, waitFor } from './lib/env.mjs';

after(closePool);

const tag = () => `ew_${randomUUID().slice(0, 8)}`;

async function newUser() {
  const [{ id }] = await sql('select herald.create_user($1, $2, $3) as id', [tag(), 'pw', '{}']);
  return id;
}

/** schedule inserts an event due `ms` milliseconds from now (database clock) and returns its id. */
async function schedule(owner, name, ms, data = {}) {
  const [{ id }] = await sql(
    "select herald.insert_event($1, $2, clock_timestamp() + $3 * interval '1 millisecond', $4) as id",
    [owner, name, ms, JSON.stringify(data)]);
  return id;
}

async function state(id) {
  const [row] = await sql(
    `select published_at is not null as published, cancelled_at is not null as cancelled, stream_seq,
            extract(epoch from published_at - publish_at) * 1000 as late_ms
       from herald.events where id = $1`, [id]);
  return row;
}

/** messages returns the "events" stream messages whose kind is one of names, in seq order. */
async function messages(names) {
  return sql(`select o.seq, o.kind, o.data from herald.messages o
               where o.stream = 'events' and o.kind = any($1) order by o.seq`, [names]);
}

test('an event due in 300 ms is published after its time, not before, and lands in stream "events"', async () => {
  const owner = await newUser();
  const name = tag();
  const id = await schedule(owner, name, 300, { v: 1 });
  await sleep(100);
  assert.equal((await state(id)).published, false, 'published before its time');
  await waitFor(async () => (await state(id)).published, { timeout: 5000, what: 'publication' });
  const s = await state(id);
  assert.ok(s.late_ms >= 0, `published ${s.late_ms} ms before its time`);
  assert.ok(s.late_ms < 1000, `published ${s.late_ms} ms late`);
  const msgs = await messages([name]);
  assert.deepEqual(msgs.map((m) => [Number(m.seq), m.kind, JSON.parse(m.data)]), [[Number(s.stream_seq), name, { v: 1 }]]);
  const [latest] = await sql('select id from herald.latest_events() where event = $1', [name]);
  assert.equal(latest.id, id);
});

test('an earlier event wakes the worker that waits for a later one', async () => {
  const owner = await newUser();
  const later = await schedule(owner, tag(), 20000);
  const name = tag();
  const soon = await schedule(owner, name, 300);
  await waitFor(async () => (await state(soon)).published, { timeout: 3000, what: 'the earlier event' });
  const s = await state(soon);
  assert.ok(s.late_ms >= 0 && s.late_ms < 1000, `lateness ${s.late_ms} ms`);
  assert.equal((await state(later)).published, false);
  await sql('select herald.cancel_event($1, $2)', [owner, later]);
});

test('a cancelled event is never published', async () => {
  const owner = await newUser();
  const name = tag();
  const id = await schedule(owner, name, 300);
  const kept = await schedule(owner, name, 400);
  await sql('select herald.cancel_event($1, $2)', [owner, id]);
  await waitFor(async () => (await state(kept)).published, { timeout: 5000, what: 'the other event' });
  await sleep(200);
  const s = await state(id);
  assert.equal(s.published, false);
  assert.equal(s.cancelled, true);
  assert.equal((await messages([name])).length, 1, 'only the kept version is in the stream');
  await assert.rejects(sql('select herald.cancel_event($1, $2)', [owner, kept]), { code: 'HR021' });
});

test('a due event locked by an undecided cancel is published after the rollback, others stay on time', async () => {
  const owner = await newUser();
  const locked = await schedule(owner, tag(), 200);
  const c = await client();
  try {
    await c.query('begin');
    await c.query('select herald.cancel_event($1, $2)', [owner, locked]);
    const other = await schedule(owner, tag(), 720);
    await waitFor(async () => (await state(other)).published, { timeout: 3000, what: 'the unlocked event' });
    const s = await state(other);
    assert.ok(s.late_ms >= 0 && s.late_ms < 250, `the worker backing off from a locked row made another event ${s.late_ms} ms late`);
    assert.equal((await state(locked)).published, false);
    await c.query('rollback');
  } finally {
    await c.end();
  }
  await waitFor(async () => (await state(locked)).published, { timeout: 3000, what: 'the event whose cancel rolled back' });
  const [{ n }] = await sql("select count(*)::int as n from herald.messages where stream = 'events' and kind = (select event from herald.events where id = $1)", [locked]);
  assert.equal(n, 1);
});

test('events falling due while PostgreSQL is down are all published once, in order, at start', async () => {
  const owner = await newUser();
  const n = 24;
  // Due from 200 ms to 3 s from now, inserted in shuffled order; some share a due time.
  const offsets = Array.from({ length: n }, (_, i) => 200 + Math.floor(i / 2) * 250);
  const order = offsets.map((_, i) => i).sort(() => Math.random() - 0.5);
  const names = [];
  const base = (await sql("select clock_timestamp() + interval '0' as t"))[0].t;
  const ids = [];
  for (const i of order) {
    const name = tag();
    names.push(name);
    const [{ id }] = await sql(
      "select herald.insert_event($1, $2, $3::timestamptz + $4 * interval '1 millisecond', $5) as id",
      [owner, name, base, offsets[i], JSON.stringify({ i })]);
    ids.push(id);
  }
  // Stop for 1.5 s (a plain restart is quicker than the spread), so that many fall due meanwhile.
  await closePool();
  stopPostgres();
  await sleep(1500);
  startPostgres();
  await waitFor(async () => {
    const [{ c }] = await sql('select count(*)::int as c from herald.events where id = any($1) and published_at is not null', [ids]);
    return c === n;
  }, { timeout: 20000, interval: 200, what: 'every event published after the restart' });

  const rows = await sql(
    `select id, stream_seq, extract(epoch from published_at - publish_at) * 1000 as late_ms
       from herald.events where id = any($1) order by publish_at, version`, [ids]);
  for (const r of rows) assert.ok(r.late_ms >= 0, `event ${r.id} published ${r.late_ms} ms early`);
  assert.ok(rows.filter((r) => r.late_ms > 300).length >= 2, 'some events fell due while the server was down');
  const seqs = rows.map((r) => Number(r.stream_seq));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'stream order is (publish time, insert order)');
  const msgs = await messages(names);
  assert.equal(msgs.length, n, 'each event is in the stream exactly once');
  assert.deepEqual(msgs.map((m) => Number(m.seq)), seqs);
  // The worker is back and keeps working after the restart.
  const after = await schedule(owner, tag(), 200);
  await waitFor(async () => (await state(after)).published, { timeout: 10000, what: 'publication after the restart' });
});
