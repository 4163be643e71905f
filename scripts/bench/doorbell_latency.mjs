// doorbell_latency.mjs: how long after a send's commit its doorbell reaches a listener
// (issue 3: the doorbell handed to the background worker must stay in low milliseconds).
// WRITERS connections send SENDS messages in all, one per transaction, each to its own stream;
// a listener timestamps every doorbell. Latency = doorbell receipt - the send's commit
// acknowledgement (as seen by the client; with the direct path the doorbell may come first,
// so it can be ≤ 0). Printed: p50, p90, p99, max, with herald.doorbell_via_worker on and off.
//   node scripts/bench/doorbell_latency.mjs   (DATABASE_URL, SENDS=3000, WRITERS=1 and 8)
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../regress/package.json'));
const pg = require('pg');
const url = process.env.DATABASE_URL;
const SENDS = Number(process.env.SENDS || 3000);

function pct(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]; }

async function run(viaWorker, writers) {
  const tag = `lat:${Math.random().toString(36).slice(2, 8)}`;
  const listener = new pg.Client({ connectionString: url });
  await listener.connect();
  const seen = new Map();
  listener.on('notification', (n) => {
    const p = JSON.parse(n.payload);
    if (p.stream && p.stream.startsWith(tag)) seen.set(p.stream, performance.now());
  });
  await listener.query('LISTEN herald');
  const conns = [];
  for (let i = 0; i < writers; i++) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`SET herald.doorbell_via_worker = ${viaWorker ? 'on' : 'off'}`);
    conns.push(c);
  }
  const acked = new Map();
  let next = 0;
  await Promise.all(conns.map(async (c) => {
    while (next < SENDS) {
      const stream = `${tag}:${next++}`;
      await c.query('SELECT herald.send($1, $2)', [stream, 'x'.repeat(100)]);
      acked.set(stream, performance.now());
    }
  }));
  const deadline = performance.now() + 10000;
  while (seen.size < SENDS && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const lat = [...acked].map(([s, t]) => (seen.has(s) ? seen.get(s) - t : Infinity)).sort((a, b) => a - b);
  const missing = lat.filter((x) => x === Infinity).length;
  const f = (x) => x.toFixed(2);
  console.log(`doorbell latency: via_worker=${viaWorker ? 'on ' : 'off'} writers=${writers} sends=${SENDS}` +
    `  p50 ${f(pct(lat, 0.5))} ms  p90 ${f(pct(lat, 0.9))} ms  p99 ${f(pct(lat, 0.99))} ms  max ${f(lat[lat.length - 1 - missing])} ms` +
    (missing ? `  MISSING ${missing}` : ''));
  await Promise.all(conns.map((c) => c.end()));
  await listener.end();
  return missing;
}

let missing = 0;
for (const writers of [1, 8]) {
  for (const via of [true, false]) missing += await run(via, writers);
}
process.exit(missing ? 1 : 0);
