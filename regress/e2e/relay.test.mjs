// relay: seed 003 — the telnet tweet relay with supervised worker processes, fed by the
// project's tweet-stream emulator. The test stops the emulator scripts/sidecar.sh started,
// runs its own with chosen settings on the same port (HERALD_EMULATOR_PORT, where the
// relay's upstreams point), and starts the default one again at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BASE, HOST, ROOT, sleep, waitFor } from './lib/env.mjs';
import { SSEStream } from './lib/sse.mjs';

const RELAY_PORT = Number(process.env.HERALD_RELAY_PORT || 18080);
const EMU_PORT = Number(process.env.HERALD_EMULATOR_PORT || 14000);
const INSTANCE = process.env.HERALD_INSTANCE || 'test';
const DATA_DIR = process.env.HERALD_DATA_DIR || path.join(ROOT, '.data');
const EMU_PIDFILE = path.join(DATA_DIR, INSTANCE, 'emulator.pid');
const EMU_BIN = process.env.HERALD_EMULATOR_BIN ||
  path.join(ROOT, 'sidecar', process.env.HERALD_SIDECAR_BUILD || 'build', 'herald-tweet-emulator');
const PANIC = '{"message": panic}';
const sidecarLog = () => fs.readFileSync(path.join(DATA_DIR, INSTANCE, 'sidecar.log'), 'utf8');

// ---- the emulator ----
let emulator = null;

function alive(pid) { try { process.kill(pid, 0); return true; } catch { return false; } }

async function stopDefaultEmulator() {
  if (!fs.existsSync(EMU_PIDFILE)) return;
  const pid = Number(fs.readFileSync(EMU_PIDFILE, 'utf8'));
  if (pid > 0 && alive(pid)) {
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !alive(pid), { timeout: 5000, what: 'the default emulator to stop' });
  }
  fs.rmSync(EMU_PIDFILE, { force: true });
}

async function startEmulator(settings) {
  await stopEmulator();
  const env = { ...process.env, PORT: String(EMU_PORT), HOST };
  for (const [k, v] of Object.entries(settings)) env[`EMULATOR_${k}`] = String(v);
  const child = spawn(EMU_BIN, [], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  child.exited = new Promise((r) => child.on('exit', r));
  emulator = child;
  await waitFor(async () => {
    try { return (await fetch(`http://${HOST}:${EMU_PORT}/`)).status === 404; } catch { return false; }
  }, { timeout: 5000, what: 'the emulator to listen' });
  return child;
}

async function stopEmulator(signal = 'SIGKILL') {
  if (emulator === null) return;
  const child = emulator;
  emulator = null;
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  await child.exited;
}

/** truth reads the first count events of /tweets/<n> straight from the emulator. */
async function truth(n, count) {
  const s = await SSEStream.open(`http://${HOST}:${EMU_PORT}/tweets/${n}`);
  const evs = await s.waitForEvents(count, 20000);
  s.close();
  const out = { tweets: [], panics: 0, malformed: 0 };
  for (const ev of evs) {
    if (ev.data === PANIC) { out.panics++; continue; }
    let text;
    try { text = JSON.parse(ev.data)?.message?.tweet?.text; } catch { text = undefined; }
    if (typeof text !== 'string' || ev.data.length > 256 * 1024) { out.malformed++; continue; }
    out.tweets.push(escape(text));
  }
  return out;
}

/** escape is what a worker does to a tweet's text before writing its line. */
function escape(text) {
  return text.replace(/[\x00-\x1f\x7f\\]/g, (c) => ({ '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c] ??
    `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

// ---- a telnet-style client ----
class RelayClient {
  static connect() {
    return new Promise((resolve, reject) => {
      const sock = net.connect(RELAY_PORT, HOST, () => resolve(new RelayClient(sock)));
      sock.once('error', reject);
    });
  }
  constructor(sock) {
    this.sock = sock;
    this.lines = [];
    this.buf = '';
    this.closed = false;
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      this.buf += d;
      const parts = this.buf.split('\r\n');
      this.buf = parts.pop();
      this.lines.push(...parts);
    });
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => {});
  }
  send(line) { this.sock.write(`${line}\n`); }
  tweets() { return this.lines.filter((l) => l.startsWith('[worker ')); }
  async waitLines(pred, what, timeout = 15000) {
    return waitFor(() => pred(this.lines), { timeout, interval: 20, what });
  }
  close() { this.sock.destroy(); }
}

const TWEET_LINE = /^\[worker (\d+) pid (\d+)\] (.*)$/;

async function metrics() {
  const body = await (await fetch(`${BASE}/metrics`)).text();
  const m = {};
  for (const line of body.split('\n')) {
    const r = /^(herald_relay_\S+) (\d+)$/.exec(line);
    if (r) m[r[1]] = Number(r[2]);
  }
  return m;
}

/** checkDelivery: every expected tweet exactly once, per-stream order kept, nothing else. */
function checkDelivery(lines, streams) {
  const where = new Map(); // text -> [stream, index]
  streams.forEach((s, k) => s.tweets.forEach((t, i) => {
    assert.ok(!where.has(t), `emulator texts are unique (${t})`);
    where.set(t, [k, i]);
  }));
  const next = streams.map(() => 0);
  for (const line of lines) {
    const m = TWEET_LINE.exec(line);
    assert.ok(m, `a tweet line: ${line}`);
    const at = where.get(m[3]);
    assert.ok(at, `an expected tweet: ${line}`);
    const [k, i] = at;
    assert.equal(i, next[k], `stream ${k + 1}: tweet ${i} arrives in order, once (expected ${next[k]}): ${line}`);
    next[k]++;
  }
  streams.forEach((s, k) => assert.equal(next[k], s.tweets.length, `stream ${k + 1}: all tweets arrived`));
}

const clients = [];
async function client() { const c = await RelayClient.connect(); clients.push(c); return c; }

before(stopDefaultEmulator);
after(async () => {
  clients.forEach((c) => c.close());
  await stopEmulator();
  // leave the instance as scripts/sidecar.sh set it up: its default emulator running
  const { execFileSync } = await import('node:child_process');
  execFileSync(path.join(ROOT, 'scripts', 'sidecar.sh'), ['start-emulator'], { stdio: 'inherit', env: process.env });
});

test('commands: unknown lines, twitter, quit', async () => {
  await startEmulator({ SEED: 1, RATE: 200, PANIC_RATIO: 0 });
  const c = await client();
  c.send('hello');
  await c.waitLines((l) => l.includes('UNKNOWN COMMAND'), 'UNKNOWN COMMAND');
  c.send('twitter');
  await c.waitLines((l) => l.includes('[Command] run :twitter'), 'the twitter answer');
  await c.waitLines((l) => l.filter((x) => TWEET_LINE.test(x)).length >= 20, 'tweets');
  const second = await client(); // several clients, each its own stream
  second.send('twitter');
  await second.waitLines((l) => l.filter((x) => TWEET_LINE.test(x)).length >= 20, 'tweets on a second client');
  c.send('quit');
  await waitFor(() => c.closed, { what: 'quit to close the connection' });
  second.send('quit');
  await waitFor(() => second.closed, { what: 'quit to close the second connection' });
});

test('every non-panic tweet arrives once, in order, through panics and a SIGKILLed worker', async () => {
  const COUNT = 600;
  await startEmulator({ SEED: 42, RATE: 250, PANIC_RATIO: 0.05, COUNT });
  const streams = await Promise.all([truth(1, COUNT), truth(2, COUNT)]);
  const panics = streams[0].panics + streams[1].panics;
  assert.ok(panics >= 20, `the seed mixes panics in (${panics})`);
  const before = await metrics();
  const c = await client();
  c.send('twitter');
  await c.waitLines((l) => c.tweets().length >= 50, 'the first tweets');
  // kill a live worker for real, as an outside event would; the supervisor logs its death
  // (a worker that happened to die of a panic at that very moment does not count: try another)
  let killed = 0;
  for (let tries = 0; tries < 20 && !killed; tries++) {
    const pid = Number(TWEET_LINE.exec(c.tweets().at(-1))[2]);
    const from = sidecarLog().length;
    try { process.kill(pid, 'SIGKILL'); } catch { await sleep(20); continue; }
    const death = await waitFor(() => sidecarLog().slice(from).split('\n')
      .find((l) => l.includes(`(pid ${pid}) killed by signal`)), { what: `the death of worker ${pid}` });
    if (death.includes('signal 9;')) killed = pid; // not "signal 6" nor "signal 9 (panic message)"
  }
  assert.ok(killed > 0, 'a worker was killed by SIGKILL and seen dying');
  const total = streams[0].tweets.length + streams[1].tweets.length;
  await c.waitLines(() => c.tweets().length >= total, `${total} tweets`, 30000);
  await sleep(300); // nothing more may come
  checkDelivery(c.tweets(), streams);
  const pids = new Set(c.tweets().map((l) => Number(TWEET_LINE.exec(l)[2])));
  assert.ok(pids.size > 4 + panics / 2, `lines come from restarted workers too (${pids.size} pids)`);
  const after = await metrics();
  assert.equal(after.herald_relay_panics_total - before.herald_relay_panics_total, panics, 'panics counted');
  assert.ok(after.herald_relay_worker_restarts_total - before.herald_relay_worker_restarts_total >= panics + 1,
    'one restart per panic, and one for the killed worker');
  assert.ok(after.herald_relay_tweets_out_total - before.herald_relay_tweets_out_total >= total);
  assert.equal(after.herald_relay_pools_given_up_total, before.herald_relay_pools_given_up_total);
  c.send('quit');
  await waitFor(() => c.closed, { what: 'quit' });
});

test('malformed upstream data is logged and skipped', async () => {
  const COUNT = 120;
  await startEmulator({ SEED: 7, RATE: 400, PANIC_RATIO: 0, MALFORMED_RATIO: 0.2, COUNT });
  const streams = await Promise.all([truth(1, COUNT), truth(2, COUNT)]);
  const malformed = streams[0].malformed + streams[1].malformed;
  assert.ok(malformed >= 20, `the seed mixes malformed events in (${malformed})`);
  const before = await metrics();
  const c = await client();
  c.send('twitter');
  const total = streams[0].tweets.length + streams[1].tweets.length;
  await c.waitLines(() => c.tweets().length >= total, `${total} tweets`, 20000);
  await sleep(300);
  checkDelivery(c.tweets(), streams);
  const after = await metrics();
  assert.equal(after.herald_relay_malformed_total - before.herald_relay_malformed_total, malformed);
  assert.equal(after.herald_relay_panics_total, before.herald_relay_panics_total, 'no worker crashed');
  assert.equal((await fetch(`${BASE}/healthcheck`)).status, 200);
  c.close();
});

test('an upstream killed and restarted: the relay reconnects and resumes (Last-Event-ID)', async () => {
  const COUNT = 500;
  const settings = { SEED: 5, RATE: 250, PANIC_RATIO: 0.02, COUNT };
  await startEmulator(settings);
  const streams = await Promise.all([truth(1, COUNT), truth(2, COUNT)]);
  const before = await metrics();
  const c = await client();
  c.send('twitter');
  await c.waitLines(() => c.tweets().length >= 100, 'the first tweets');
  await stopEmulator('SIGKILL');
  const seen = c.tweets().length;
  await sleep(400);
  await startEmulator(settings);
  const total = streams[0].tweets.length + streams[1].tweets.length;
  assert.ok(seen < total - 100, 'the upstream died mid-stream');
  await c.waitLines(() => c.tweets().length >= total, `${total} tweets`, 30000);
  await sleep(300);
  checkDelivery(c.tweets(), streams);
  const after = await metrics();
  assert.ok(after.herald_relay_upstream_reconnects_total - before.herald_relay_upstream_reconnects_total >= 2,
    'both upstreams reconnected');
  c.close();
});

test('the restart-intensity limit gives up on a pool; the server stays up for other clients', async () => {
  await startEmulator({ SEED: 9, RATE: 300, PANIC_RATIO: 1 });
  const before = await metrics();
  const a = await client();
  a.send('twitter');
  await a.waitLines((l) => l.some((x) => x.startsWith('[Supervisor] worker pool gave up')), 'the pool to give up', 30000);
  assert.equal(a.tweets().length, 0, 'nothing but panics came');
  const after = await metrics();
  assert.equal(after.herald_relay_pools_given_up_total - before.herald_relay_pools_given_up_total, 1);
  assert.ok(after.herald_relay_worker_restarts_total - before.herald_relay_worker_restarts_total >= 1);
  await waitFor(async () => (await metrics()).herald_relay_workers_alive === 0, { what: 'the pool to be gone' });
  // the server is up: the same client can still talk to it, and a new one streams
  assert.equal((await fetch(`${BASE}/healthcheck`)).status, 200);
  a.send('what');
  await a.waitLines((l) => l.at(-1) === 'UNKNOWN COMMAND', 'UNKNOWN COMMAND after the give-up');
  await startEmulator({ SEED: 9, RATE: 300, PANIC_RATIO: 0 });
  const b = await client();
  b.send('twitter');
  await b.waitLines(() => b.tweets().length >= 20, 'tweets for another client');
  a.close();
  b.close();
});
