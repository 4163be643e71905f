// env.mjs: where the system under test is, and how to drive it.
// The test script (scripts/test.sh) starts PostgreSQL and the sidecar and exports these.
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const HOST = process.env.HOST || '127.0.0.1';
export const PORT = Number(process.env.PORT || 3100);
export const BASE = `http://${HOST}:${PORT}`;
export const DATABASE_URL = process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5434/herald';

let pool;
/** sql runs one parameterised statement and returns the rows. */
export async function sql(text, params = []) {
  pool ??= new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  const { rows } = await pool.query(text, params);
  return rows;
}
/** client returns a dedicated connection (for LISTEN or explicit transactions); call .end(). */
export async function client() {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  return c;
}
export async function closePool() { if (pool) { await pool.end(); pool = undefined; } }

function script(name, ...args) {
  execFileSync(path.join(ROOT, 'scripts', name), args, { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
}
/** restartSidecar stops the sidecar and starts it again (returns once /healthcheck answers). */
export function restartSidecar() { script('sidecar.sh', 'restart'); }
export function stopSidecar() { script('sidecar.sh', 'stop-sidecar'); }
export function startSidecar() { script('sidecar.sh', 'start'); }
/** restartPostgres is `pg_ctl restart` of the test cluster. */
export async function restartPostgres() { await closePool(); script('cluster.sh', 'restart'); }
export function stopPostgres() { script('cluster.sh', 'stop'); }
export function startPostgres() { script('cluster.sh', 'start'); }

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * spawnSidecar starts a second sidecar of the test's own (same database, no follower maze or
 * relay) on port with extra environment. child.output collects what it prints, child.exited
 * resolves to its exit code, child.stop() sends SIGTERM and resolves once it has exited; it
 * rejects when the sidecar printed a sanitizer report (AddressSanitizer, UBSan's runtime error).
 */
export function spawnSidecar(port, env = {}) {
  const bin = process.env.HERALD_SIDECAR_BIN || path.join(ROOT, 'sidecar/build/herald-sidecar');
  const child = spawn(bin, [], {
    env: { ...process.env, PORT: String(port), HERALD_FOLLOWERMAZE: '0', HERALD_RELAY: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.output = '';
  child.stdout.on('data', (d) => { child.output += d; });
  child.stderr.on('data', (d) => { child.output += d; });
  // 'close': the process has exited and all of its output has been read
  child.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  child.stop = async () => {
    child.kill('SIGTERM');
    const code = await child.exited;
    if (/AddressSanitizer|runtime error:/.test(child.output)) throw new Error(`sanitizer errors in the sidecar on port ${port}:\n${child.output}`);
    return code;
  };
  return child;
}

/** sidecarReady waits (up to 10 s) until a spawned sidecar answers /healthcheck; its base URL. */
export async function sidecarReady(port, child) {
  const base = `http://${HOST}:${port}`;
  const what = `the sidecar on port ${port} to start`;
  await waitFor(async () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what}: it exited: ${child.output}`);
    try { return (await fetch(`${base}/healthcheck`)).ok; } catch { return false; /* not yet */ }
  }, { timeout: 10000, what });
  return base;
}

/** waitFor polls fn until it returns a truthy value or the time runs out. */
export async function waitFor(fn, { timeout = 5000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}
