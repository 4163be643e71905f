// doorbell_worker: the doorbell (NOTIFY herald) when committing transactions hand it to the
// background worker (herald.doorbell_via_worker = on, extension/src/doorbell.c). A listener
// must see, for every committed transaction, one doorbell per stream it wrote, in seq order per
// stream, only once the data is visible, never for rolled-back work; the payload is the same
// JSON as when the transaction notifies itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { sql, client, closePool, sleep, waitFor } from './lib/env.mjs';

const tag = `dbw:${crypto.randomUUID().slice(0, 8)}`;
let listener;
let workerPid;
const got = []; // { stream, seq, kind, data, count, pid, visible: Promise<bigint> }

before(async () => {
  const [{ stats }] = await sql('SELECT herald.doorbell_stats() AS stats');
  assert.equal(stats.worker_drains, true, `the worker must drain the ring: ${JSON.stringify(stats)}`);
  assert.equal(stats.this_database, true, `the worker must serve this database: ${JSON.stringify(stats)}`);
  const rows = await sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'herald scheduler'");
  assert.equal(rows.length, 1, 'one herald scheduler');
  workerPid = rows[0].pid;
  listener = await client();
  const reader = await client();
  listener.on('notification', (n) => {
    const p = JSON.parse(n.payload);
    if (!p.stream || !p.stream.startsWith(tag)) return;
    // the data must be visible once the doorbell arrives: read it right away
    const visible = reader.query('SELECT herald.stream_position($1) AS pos', [p.stream]).then((r) => BigInt(r.rows[0].pos));
    visible.catch(() => {}); // a late doorbell after the last test must not fail the file; tests await it
    got.push({ ...p, pid: n.processId, visible });
  });
  listener.reader = reader;
  await listener.query('LISTEN herald');
});

after(async () => {
  if (listener) {
    listener.removeAllListeners('notification'); // stop reading before the reader goes away
    await listener.end();
    await listener.reader.end();
  }
  await closePool();
});

/** doorbells returns the doorbells received so far for one stream, in arrival order. */
const doorbells = (stream) => got.filter((d) => d.stream === stream);

test('concurrent senders to one stream: every doorbell, in seq order, after commit, from the worker', async () => {
  const stream = `${tag}:one`;
  const writers = await Promise.all(Array.from({ length: 6 }, () => client()));
  const writerPids = new Set();
  for (const w of writers) writerPids.add((await w.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  const sent = new Map(); // seq -> data
  await Promise.all(writers.map(async (w, i) => {
    for (let k = 0; k < 40; k++) {
      const data = `w${i} m${k}`;
      if (k % 7 === 3) { // a rolled-back send: no seq, no doorbell
        await w.query('BEGIN');
        await w.query('SELECT herald.send($1, $2)', [stream, `rolled back ${data}`]);
        await w.query('ROLLBACK');
        continue;
      }
      const { rows } = await w.query('SELECT herald.send($1, $2) AS seq', [stream, data]);
      sent.set(Number(rows[0].seq), data);
    }
  }));
  await Promise.all(writers.map((w) => w.end()));
  const n = sent.size;
  await waitFor(() => doorbells(stream).length >= n, { timeout: 10000, what: `${n} doorbells` });
  await sleep(200); // nothing more may come (no duplicate, no rolled-back one)
  const bells = doorbells(stream);
  assert.equal(bells.length, n, 'one doorbell per committed transaction');
  for (let i = 0; i < bells.length; i++) {
    const b = bells[i];
    assert.equal(b.seq, i + 1, 'seq order, no hole, no duplicate');
    assert.equal(b.kind, 'message');
    assert.equal(b.data, sent.get(b.seq), 'inline data of a small single message');
    assert.equal(b.count, undefined);
    assert.ok(!b.data.startsWith('rolled back'));
    assert.equal(b.pid, workerPid, 'rung by the worker');
    assert.ok(!writerPids.has(b.pid));
    assert.ok(await b.visible >= BigInt(b.seq), 'the message is visible when its doorbell arrives');
  }
});

test('many streams and multi-stream transactions: one doorbell per stream per transaction', async () => {
  const writers = await Promise.all(Array.from({ length: 4 }, () => client()));
  const expected = new Map(); // stream -> [{seq, count, data}]
  const note = (stream, d) => { if (!expected.has(stream)) expected.set(stream, []); expected.get(stream).push(d); };
  await Promise.all(writers.map(async (w, i) => {
    for (let k = 0; k < 25; k++) {
      const a = `${tag}:s${(i * 25 + k) % 30}`;
      const b = `${tag}:t${k % 5}`;
      await w.query('BEGIN');
      const r1 = await w.query('SELECT herald.send($1, $2) AS seq', [a, `a ${i} ${k}`]);
      const r2 = await w.query('SELECT herald.send($1, $2) AS seq', [b, `b1 ${i} ${k}`]);
      const r3 = await w.query('SELECT herald.send($1, $2) AS seq', [b, `b2 ${i} ${k}`]);
      if (k % 5 === 4) { await w.query('ROLLBACK'); continue; }
      await w.query('COMMIT');
      note(a, { seq: Number(r1.rows[0].seq), data: `a ${i} ${k}` });
      note(b, { seq: Number(r3.rows[0].seq), count: 2, first: Number(r2.rows[0].seq) });
    }
  }));
  await Promise.all(writers.map((w) => w.end()));
  const total = [...expected.values()].reduce((s, l) => s + l.length, 0);
  const mine = () => got.filter((d) => /:(s|t)\d+$/.test(d.stream)).length;
  await waitFor(() => mine() >= total, { timeout: 10000, what: `${total} doorbells` });
  await sleep(200); // nothing more may come
  assert.equal(mine(), total, 'exactly one doorbell per stream per committed transaction');
  for (const [stream, list] of expected) {
    list.sort((x, y) => x.seq - y.seq);
    const bells = doorbells(stream);
    assert.deepEqual(bells.map((b) => b.seq), list.map((d) => d.seq), `${stream}: seq order`);
    for (let i = 0; i < list.length; i++) {
      const b = bells[i], d = list[i];
      if (d.count) {
        assert.deepEqual({ count: b.count, data: b.data }, { count: 2, data: undefined }, `${stream}: two messages, no data`);
        assert.equal(d.first, d.seq - 1);
      } else {
        assert.equal(b.data, d.data, `${stream}: inline`);
      }
      assert.equal(b.pid, workerPid);
      assert.ok(await b.visible >= BigInt(b.seq), 'visible when announced');
    }
  }
});

test('a large message is announced without data; a savepoint rollback is forgotten', async () => {
  const stream = `${tag}:big`;
  const w = await client();
  await w.query('SELECT herald.send($1, repeat($2, 9000))', [stream, 'x']);
  await w.query('BEGIN');
  await w.query('SELECT herald.send($1, $2)', [stream, 'kept']);
  await w.query('SAVEPOINT sp');
  await w.query('SELECT herald.send($1, $2)', [`${tag}:sp`, 'gone']);
  await w.query('ROLLBACK TO SAVEPOINT sp');
  await w.query('COMMIT');
  await w.end();
  await waitFor(() => doorbells(stream).length >= 2, { what: 'two doorbells' });
  const [big, small] = doorbells(stream);
  assert.deepEqual({ seq: big.seq, count: big.count, data: big.data }, { seq: 1, count: 1, data: undefined });
  assert.deepEqual({ seq: small.seq, data: small.data }, { seq: 2, data: 'kept' });
  await sleep(200);
  assert.equal(doorbells(stream).length, 2, 'one doorbell per transaction, no more');
  assert.equal(doorbells(`${tag}:sp`).length, 0, 'nothing for a rolled-back savepoint');
});

test('herald.doorbell_via_worker = off: the transaction rings its doorbell itself', async () => {
  const stream = `${tag}:direct`;
  const w = await client();
  const pid = (await w.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  await w.query('SET herald.doorbell_via_worker = off');
  await w.query('SELECT herald.send($1, $2)', [stream, 'direct']);
  await w.query('RESET herald.doorbell_via_worker');
  await w.query('SELECT herald.send($1, $2)', [stream, 'via worker']);
  await w.end();
  await waitFor(() => doorbells(stream).length >= 2, { what: 'two doorbells' });
  await sleep(200); // the direct one must not be rung again by the worker
  assert.equal(doorbells(stream).length, 2, 'one doorbell per transaction, no more');
  const [a, b] = doorbells(stream);
  assert.deepEqual({ seq: a.seq, data: a.data, pid: a.pid }, { seq: 1, data: 'direct', pid });
  assert.deepEqual({ seq: b.seq, data: b.data, pid: b.pid }, { seq: 2, data: 'via worker', pid: workerPid });
});
