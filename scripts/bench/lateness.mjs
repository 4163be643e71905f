// lateness.mjs: how late the background worker publishes scheduled Broker events.
//   node scripts/bench/lateness.mjs            (DATABASE_URL: a database with extension herald
//                                                and the worker running; lateness.sh sets it up)
// Two loads, each of N events (BENCH_EVENTS, default 10000), inserted ahead of time in one
// transaction:
//   spread        due times spread evenly over BENCH_SPREAD_MS (default 3000 ms)
//   simultaneous  all due at the same instant
// For each: p50/p99/max of lateness = published_at - publish_at (the worker's clock time of
// publication, stored by it), and the "delivered" lateness seen by a LISTEN client: the time
// the doorbell of the event's commit arrived (so it includes the commit) minus publish_at.
// Baseline (same invocation): herald.send of N messages in one statement, i.e. the outbox
// alone; the ratio says what scheduling costs on top of it.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const pg = createRequire(path.join(root, 'regress/package.json'))('pg');
const url = process.env.DATABASE_URL;
const N = Number(process.env.BENCH_EVENTS || 10000);
const SPREAD_MS = Number(process.env.BENCH_SPREAD_MS || 3000);
const LEAD_MS = Number(process.env.BENCH_LEAD_MS || 3000); // first due time after the insert starts
// The bulk insert of the load makes autovacuum visit herald.events and herald.outbox a moment
// later, on the same CPUs as the worker; by default the bench runs that VACUUM ANALYZE itself
// before the first due time, so it measures the scheduler in steady state (BENCH_VACUUM=0: not).
const VACUUM = process.env.BENCH_VACUUM !== '0';

const nowMs = () => performance.timeOrigin + performance.now();
const db = new pg.Client({ connectionString: url });
const listener = new pg.Client({ connectionString: url });
await db.connect();
await listener.connect();

// Doorbells of stream "events": [seq, arrival ms] in arrival (= commit) order.
let bells = [];
listener.on('notification', (m) => {
  const t = nowMs();
  try {
    const p = JSON.parse(m.payload);
    if (p.stream === 'events') bells.push([Number(p.seq), t]);
  } catch { /* not ours */ }
});
await listener.query('LISTEN herald');

const q = async (text, params) => (await db.query(text, params)).rows;
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
const f = (x) => x.toFixed(2).padStart(8);

const [{ owner }] = await q('select herald.create_user($1, $2, $3) as owner', [`bench_${Date.now()}`, 'pw', '{}']);
const [{ batch }] = await q("select current_setting('herald.worker_batch_size') as batch");

// The worker's CPU time (utime + stime, ms) from /proc, when it runs on this host.
const [{ wpid }] = await q("select pid as wpid from pg_stat_activity where backend_type = 'herald scheduler'");
function workerCpuMs() {
  try {
    const f = readFileSync(`/proc/${wpid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
  } catch { return NaN; }
}

async function run(label, prefix, dueSql) {
  bells = [];
  const t0 = nowMs();
  await q(`select herald.insert_event($1, $2 || (i % 50), ${dueSql}, jsonb_build_object('i', i))
             from generate_series(1, $3) i`, [owner, prefix, N]);
  const inserted = nowMs() - t0;
  if (VACUUM) {
    await q('vacuum analyze herald.events, herald.outbox, herald.streams');
    const ready = nowMs() - t0;
    if (ready > LEAD_MS) console.log(`  (warning: the vacuum ended ${(ready - LEAD_MS).toFixed(0)} ms after the first due time)`);
  }
  // Sleep through the load (polling would take CPU from the worker), then wait for the rest.
  const [{ last }] = await q('select extract(epoch from max(publish_at)) * 1000 as last from herald.events where user_id = $1 and event like $2',
    [owner, `${prefix}%`]);
  const cpu0 = workerCpuMs();
  await new Promise((r) => setTimeout(r, Math.max(0, Number(last) - Date.now())));
  for (;;) {
    const [{ c }] = await q(`select count(*)::int as c from herald.events
                               where published_at is null and cancelled_at is null and user_id = $1 and event like $2`,
      [owner, `${prefix}%`]);
    if (c === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const cpu = workerCpuMs() - cpu0;
  await new Promise((r) => setTimeout(r, 300)); // the last doorbells
  const rows = await q(
    `select extract(epoch from published_at - publish_at) * 1000 as late,
            extract(epoch from publish_at) * 1000 as due_ms, stream_seq,
            extract(epoch from published_at) * 1000 as pub_ms
       from herald.events where user_id = $1 and event like $2 order by stream_seq`, [owner, `${prefix}%`]);
  const late = rows.map((r) => Number(r.late)).sort((a, b) => a - b);
  // delivered: first doorbell whose seq covers the event's seq
  const delivered = [];
  let b = 0;
  for (const r of rows) {
    const s = Number(r.stream_seq);
    while (b < bells.length && bells[b][0] < s) b++;
    if (b < bells.length) delivered.push(bells[b][1] - Number(r.due_ms));
  }
  delivered.sort((a, b) => a - b);
  const pubs = rows.map((r) => Number(r.pub_ms));
  const span = Math.max(...pubs) - Math.min(...pubs);
  const early = late.filter((x) => x < 0).length;
  console.log(`${label.padEnd(13)} n=${rows.length} (insert ${inserted.toFixed(0)} ms${VACUUM ? ', then VACUUM ANALYZE' : ''})`);
  console.log(`  lateness published_at-publish_at ms: p50 ${f(pct(late, 0.5))}  p99 ${f(pct(late, 0.99))}  max ${f(late[late.length - 1])}  early ${early}`);
  if (delivered.length)
    console.log(`  lateness delivered (LISTEN)      ms: p50 ${f(pct(delivered, 0.5))}  p99 ${f(pct(delivered, 0.99))}  max ${f(delivered[delivered.length - 1])}  (${delivered.length} events, ${bells.length} doorbells)`);
  console.log(`  first to last publication ${span.toFixed(1)} ms, ${(rows.length / (span / 1000)).toFixed(0)} events/s; worker CPU ${cpu} ms (${(cpu * 1000 / rows.length).toFixed(0)} us/event)`);
  return { late, span, early };
}

// Context: the figures depend on the machine's load and on the commit's WAL flush.
const [{ fsync, sc }] = await q("select current_setting('fsync') as fsync, current_setting('synchronous_commit') as sc");
console.log(`context       load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${cpus().length} CPUs; fsync=${fsync}, synchronous_commit=${sc}`);

// Baseline: the outbox alone, N messages in one statement.
const tb = nowMs();
await q("select herald.send('bench_baseline', jsonb_build_object('i', i)::text, 'k' || (i % 50)) from generate_series(1, $1) i", [N]);
const baseMs = nowMs() - tb;
console.log(`baseline      herald.send x${N} in one statement: ${baseMs.toFixed(0)} ms, ${(N / (baseMs / 1000)).toFixed(0)} msgs/s (herald.worker_batch_size = ${batch})`);

const spread = await run('spread', `bs${Date.now()}_`,
  `clock_timestamp() + (${LEAD_MS} + (i - 1) * ${SPREAD_MS}.0 / $3) * interval '1 millisecond'`);
const simul = await run('simultaneous', `bi${Date.now()}_`,
  `(select clock_timestamp() + ${LEAD_MS} * interval '1 millisecond')`);

const simulRate = N / (simul.span / 1000);
console.log(`ratio         simultaneous publish rate / baseline send rate = ${(simulRate / (N / (baseMs / 1000))).toFixed(2)}`);
const ok1 = pct(spread.late, 0.99) < 5, ok2 = simul.late[simul.late.length - 1] < 500;
console.log(`target spread p99 < 5 ms: ${ok1 ? 'met' : 'MISSED'}; simultaneous all within 500 ms: ${ok2 ? 'met' : 'MISSED'}; published early: ${spread.early + simul.early}`);
await db.end();
await listener.end();
process.exit(spread.early + simul.early === 0 ? 0 : 1);
