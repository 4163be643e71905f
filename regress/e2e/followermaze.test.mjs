// followermaze: seed 004 through the real sidecar. The verification program
// (sidecar/tools/followermaze.c) plays the event source and the user clients and checks every
// byte each client receives; these tests run it with the options the issue names, then poke
// the sequencer's policies for bad input directly over TCP, and show that the program does
// fail when the server is wrong (a naive relay that does not reorder).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BASE, HOST, ROOT, sleep, waitFor } from './lib/env.mjs';

const EVENT_PORT = Number(process.env.eventListenerPort || 19090);
const CLIENT_PORT = Number(process.env.clientListenerPort || 19099);
const PROGRAM = process.env.HERALD_FM_PROGRAM ||
  path.join(ROOT, 'sidecar', process.env.HERALD_SIDECAR_BUILD || 'build', 'followermaze');
// scripts/test.sh gives the test sidecar these two; the tests below rely on them being small.
const ID_TIMEOUT_MS = Number(process.env.HERALD_FM_ID_TIMEOUT_MS || 10000);
const CLIENT_MAX_BUFFER = Number(process.env.HERALD_FM_CLIENT_MAX_BUFFER || 8388608);

const sockets = new Set();
after(() => { for (const s of sockets) s.destroy(); });

/** run executes the verification program with env overrides; resolves {code, out}. */
function run(env = {}, ports = { eventListenerPort: EVENT_PORT, clientListenerPort: CLIENT_PORT }) {
  assert.ok(fs.existsSync(PROGRAM), `${PROGRAM} is missing: make -C sidecar B=... builds it`);
  return new Promise((resolve, reject) => {
    const child = spawn(PROGRAM, [], {
      env: { ...process.env, HOST, totalEvents: '200000', logInterval: '0', timeout: '10000', ...ports, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function passes(env) {
  const { code, out } = await run(env);
  assert.equal(code, 0, `the program failed:\n${out}`);
  assert.match(out, /ALL NOTIFICATIONS RECEIVED/);
  return out;
}

async function metrics() {
  const body = await (await fetch(`${BASE}/metrics`)).text();
  const m = {};
  for (const [, k, v] of body.matchAll(/^herald_(fm_\w+) (\d+)$/gm)) m[k] = Number(v);
  return m;
}

/** connect opens a TCP connection to port; it counts what it receives and keeps the text
 * (all of it, or only the last 256 characters when keep is false). */
function connect(port, keep = true) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port }, () => resolve(s));
    sockets.add(s);
    s.received = '';
    s.bytes = 0;
    s.gone = false;
    s.setEncoding('latin1');
    s.on('data', (d) => {
      s.bytes += d.length;
      s.received = keep ? s.received + d : (s.received + d).slice(-256);
    });
    s.on('close', () => { s.gone = true; });
    s.on('error', () => {});
    s.once('error', reject);
  });
}

test('200 000 events with the default mix: every client gets exactly its notifications', async () => {
  const before = await metrics();
  const out = await passes({});
  const m = await metrics();
  assert.equal(m.fm_events_total - before.fm_events_total, 200000);
  const [, notifications] = out.match(/notifications=(\d+)/);
  assert.equal(m.fm_notifications_total - before.fm_notifications_total, Number(notifications));
  assert.equal(m.fm_streams_total - before.fm_streams_total, 1);
  assert.equal(m.fm_skipped_total - before.fm_skipped_total, 0);
  assert.equal(m.fm_window_events, 0);
});

test('the same run again against the same sidecar: a new event source is a fresh stream', async () => {
  // Same seed, same users, same follows: had the first stream's follows survived, status
  // updates would reach extra followers and the program would see unexpected notifications.
  await passes({});
  await passes({ randomSeed: '7', concurrencyLevel: '50', numberOfUsers: '200' });
});

test('in order (maxEventSourceBatchSize=1) and in batches of up to 1000', async () => {
  await passes({ maxEventSourceBatchSize: '1' });
  await passes({ maxEventSourceBatchSize: '1000' });
});

test('a client that connects late gets the follows recorded before it came, and everything after', async () => {
  const out = await passes({ lateClients: '5', lateAt: '120000' });
  assert.match(out, /connected 5 late clients/);
});

test('malformed lines, duplicates and CRLF: skipped and counted, forwarded byte for byte', async () => {
  const before = await metrics();
  const out = await passes({ malformedEvery: '500', duplicateEvery: '700', crlf: '2' });
  assert.match(out, /400 malformed, 285 duplicates/);
  const m = await metrics();
  assert.equal(m.fm_malformed_total - before.fm_malformed_total, 400);
  assert.equal(m.fm_duplicates_total - before.fm_duplicates_total, 285);
  assert.equal(m.fm_events_total - before.fm_events_total, 200000 + 285);
});

test('lost sequence numbers: skipped after the adaptive timeout, and at the end of the stream', async () => {
  let before = await metrics();
  await passes({ dropSeqs: '1000,100000' });
  let m = await metrics();
  assert.equal(m.fm_skipped_total - before.fm_skipped_total, 2);
  // The event source leaves right after the last event: what it sent is delivered at once.
  before = m;
  const t0 = Date.now();
  await passes({ dropSeqs: '5,199990', keepEventSourceOpen: '0', totalEvents: '200000' });
  m = await metrics();
  assert.equal(m.fm_skipped_total - before.fm_skipped_total, 2);
  assert.ok(Date.now() - t0 < 8000);
});

test('the program fails on a server that does not reorder (and on one that over-delivers)', async () => {
  // A naive relay: forwards every event line, as it arrives, to every client.
  const clients = new Set();
  const clientServer = net.createServer((s) => { s.on('error', () => {}); clients.add(s); s.on('close', () => clients.delete(s)); });
  const eventServer = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d) => { for (const c of clients) c.write(d); });
  });
  await new Promise((r) => clientServer.listen(0, HOST, r));
  await new Promise((r) => eventServer.listen(0, HOST, r));
  const ports = { eventListenerPort: String(eventServer.address().port), clientListenerPort: String(clientServer.address().port) };
  try {
    let r = await run({ totalEvents: '2000', timeout: '3000' }, ports);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /FAILED: client for user \d+/);
    assert.doesNotMatch(r.out, /ALL NOTIFICATIONS RECEIVED/);
    r = await run({ totalEvents: '2000', timeout: '3000', maxEventSourceBatchSize: '1' }, ports);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /received a notification it should not have|differs/);
    assert.match(r.out, /expected/);
  } finally {
    for (const c of clients) c.destroy();
    clientServer.close();
    eventServer.close();
  }
});

test('bad user clients are cut, others are unaffected; a second event source is refused', async () => {
  const before = await metrics();
  const good = await connect(CLIENT_PORT, false);
  good.write('424242\r\n');
  const badId = await connect(CLIENT_PORT);
  badId.write('12x\n');
  const silent = await connect(CLIENT_PORT); // never sends its id
  const slow = await connect(CLIENT_PORT, false);
  slow.write('424243\n');
  slow.pause(); // never reads
  await sleep(300); // registration (clients of earlier tests may still be leaving: no count to wait on)

  const source = await connect(EVENT_PORT);
  const second = await connect(EVENT_PORT);
  await waitFor(() => second.gone, { what: 'the second event source to be refused' });

  // Enough broadcasts to overflow the slow client's bound (kernel buffers included), sent in
  // chunks paced by the good client so that it never falls a whole bound behind.
  const total = Math.ceil((CLIENT_MAX_BUFFER + 12 * 1048576) / 10);
  let seq = 1, sent = 0;
  while (seq <= total) {
    let s = '';
    for (let i = 0; i < 10000 && seq <= total; i++) s += `${seq++}|B\n`;
    sent += s.length;
    source.write(s);
    await waitFor(() => good.bytes === sent || good.gone, { timeout: 10000, interval: 2, what: `broadcasts up to ${seq - 1}` });
    assert.ok(!good.gone, 'the good client was cut');
  }
  const last = `${total + 1}|P|1|424242\r\n`; // CRLF and a private message: forwarded as read
  source.write(last);
  await waitFor(() => good.received.endsWith(last), { timeout: 10000, what: 'the good client to get everything' });
  assert.equal(good.bytes, expectedBytes(total) + last.length);
  await waitFor(() => badId.gone, { what: 'the bad id to be cut' });
  await waitFor(() => silent.gone, { timeout: ID_TIMEOUT_MS + 3000, what: 'the silent client to be cut' });
  slow.resume();
  await waitFor(() => slow.gone, { timeout: 10000, what: 'the slow client to be cut' });
  assert.ok(slow.bytes < expectedBytes(total), 'the slow client was cut before getting everything');
  const m = await metrics();
  assert.ok(m.fm_client_cuts_total - before.fm_client_cuts_total >= 3, JSON.stringify(m));
  source.end();
  good.end();
  await sleep(100);
});

function expectedBytes(total) {
  let n = 0;
  for (let s = 1; s <= total; s++) n += String(s).length + 3;
  return n;
}

test('an overlong line, an unterminated last line and a hole are handled when the source leaves', async () => {
  const before = await metrics();
  const c = await connect(CLIENT_PORT);
  c.write('77\n');
  await sleep(300);
  const source = await connect(EVENT_PORT);
  // The overlong line comes in two writes: the sequencer drops it across reads.
  source.write('1|P|5|77\n' + '2|P|5|' + '7'.repeat(3000));
  await sleep(50);
  source.write('7'.repeat(3000) + '\n' + '4|P|5|77\r\n3|X|1|2\n' + '6|B');
  await sleep(100);
  source.end();
  await waitFor(() => c.received.endsWith('4|P|5|77\r\n'), { what: 'delivery at the end of the stream' });
  assert.equal(c.received, '1|P|5|77\n4|P|5|77\r\n');
  const m = await metrics();
  assert.equal(m.fm_malformed_total - before.fm_malformed_total, 3); // overlong, unknown type, unterminated
  assert.equal(m.fm_skipped_total - before.fm_skipped_total, 2); // 2 and 3 never came as events
  c.end();
});
