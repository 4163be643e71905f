// relay.mjs: see relay.sh.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { HOST, ROOT, BASE, waitFor } from '../../regress/e2e/lib/env.mjs';

const N = Number(process.env.BENCH_RELAY_EVENTS || 100000);
const RATE = Number(process.env.BENCH_RELAY_RATE || 50000);
const PANIC_RATIO = Number(process.env.BENCH_RELAY_PANIC_RATIO || 0.0002);
const EMU_PORT = Number(process.env.HERALD_EMULATOR_PORT);
const RELAY_PORT = Number(process.env.HERALD_RELAY_PORT);
const pidfile = path.join(process.env.HERALD_INSTANCE_DIR, 'emulator.pid');

if (fs.existsSync(pidfile)) {
  const pid = Number(fs.readFileSync(pidfile, 'utf8'));
  try { process.kill(pid, 'SIGTERM'); } catch {}
  await waitFor(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, { what: 'emulator stop' });
  fs.rmSync(pidfile, { force: true });
}
const emu = spawn(process.env.HERALD_EMULATOR_BIN, [], {
  stdio: 'ignore',
  env: { ...process.env, PORT: String(EMU_PORT), EMULATOR_SEED: '3', EMULATOR_RATE: String(RATE),
    EMULATOR_PANIC_RATIO: String(PANIC_RATIO), EMULATOR_COUNT: String(N) },
});
await waitFor(async () => { try { return (await fetch(`http://${HOST}:${EMU_PORT}/`)).status === 404; } catch { return false; } },
  { what: 'emulator' });

/** direct reads /tweets/n straight from the emulator; resolves with {events, panics}. */
function direct(n) {
  return new Promise((resolve, reject) => {
    let events = 0, panics = 0, tail = '';
    const req = http.get(`http://${HOST}:${EMU_PORT}/tweets/${n}`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => {
        const s = tail + d;
        const parts = s.split('\n');
        tail = parts.pop();
        for (const l of parts) {
          if (l.startsWith('id: ')) events++;
          else if (l === 'data: {"message": panic}') panics++;
        }
        if (events >= N) { req.destroy(); resolve({ events, panics }); }
      });
    });
    req.on('error', (e) => { if (events < N) reject(e); });
  });
}

let t = Date.now();
const streams = await Promise.all([direct(1), direct(2)]);
const directMs = Date.now() - t;
const panics = streams[0].panics + streams[1].panics;
const expected = 2 * N - panics;

t = Date.now();
const got = await new Promise((resolve, reject) => {
  let lines = 0, tail = '';
  const sock = net.connect(RELAY_PORT, HOST, () => sock.write('twitter\n'));
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    const parts = (tail + d).split('\r\n');
    tail = parts.pop();
    for (const l of parts) if (l.startsWith('[worker ')) lines++;
    if (lines >= expected) { sock.destroy(); resolve(lines); }
  });
  sock.on('error', reject);
  setTimeout(() => { sock.destroy(); resolve(lines); }, 120000);
});
const relayMs = Date.now() - t;
const metrics = await (await fetch(`${BASE}/metrics`)).text();
const restarts = /^herald_relay_worker_restarts_total (\d+)/m.exec(metrics)?.[1];
emu.kill('SIGKILL');
execFileSync(path.join(ROOT, 'scripts', 'sidecar.sh'), ['start-emulator'], { stdio: 'inherit', env: process.env });

console.log(`events: 2 streams x ${N} at up to ${RATE}/s each, ${panics} panics`);
console.log(`baseline (read straight from the emulator): ${directMs} ms, ${Math.round(2 * N / directMs * 1000)} events/s`);
console.log(`relay (SSE -> ${process.env.HERALD_RELAY_WORKERS || 4} worker processes -> telnet client): ${got}/${expected} tweets in ${relayMs} ms, ` +
  `${Math.round(got / relayMs * 1000)} tweets/s, ${restarts} worker restarts in total`);
console.log(`ratio relay/baseline throughput: ${(directMs / relayMs).toFixed(2)}`);
if (got !== expected) { console.log('FAIL: tweets missing'); process.exit(1); }
