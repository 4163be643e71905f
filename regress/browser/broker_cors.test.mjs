// broker_cors: the Broker API from a real browser page (Debian's chromium, playwright-core).
// A page of the configured ORIGIN creates a user, logs in, opens an EventSource on /events and
// inserts an event with an Authorization header (so Chromium sends real CORS preflights); a
// page of another origin is refused by the browser. The two pages are served by playwright's
// request interception, so no extra server is needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BASE, closePool } from '../e2e/lib/env.mjs';

const ORIGIN = (process.env.ORIGIN || 'http://allowed.example').split(',')[0].trim();
const OTHER = 'http://refused.example';
let context, profile;

before(async () => {
  profile = mkdtempSync(path.join(os.tmpdir(), 'herald-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      // The pages are "public" origins calling a loopback server: allow that (Private Network Access).
      '--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks'],
  });
  for (const origin of [ORIGIN, OTHER]) {
    await context.route(`${origin}/**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>broker</title>' }));
  }
});

after(async () => {
  if (context) await context.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await closePool();
});

// The script the allowed page runs: the whole Broker flow through fetch and EventSource.
async function flow({ base, username }) {
  const json = (o) => ({ method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(o) });
  const created = await fetch(`${base}/users`, json({ username, password: 'pw', info: 'browser' }));
  const login = await fetch(`${base}/login`, json({ username, password: 'pw' }));
  const { jwt } = await login.json();
  const name = `${username}-evt`;
  const es = new EventSource(`${base}/events`);
  const got = new Promise((resolve, reject) => {
    es.addEventListener(name, (e) => resolve({ data: e.data, lastEventId: e.lastEventId }));
    setTimeout(() => reject(new Error('no event within 5 s')), 5000);
  });
  await new Promise((resolve) => { es.onopen = resolve; });
  const insert = await fetch(`${base}/insert`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${jwt}` },
    body: JSON.stringify({ event: name, timestamp: Math.floor(Date.now() / 1000), data: { from: 'browser' } }),
  });
  const ev = await got;
  es.close();
  return { created: created.status, login: login.status, insert: insert.status, ev };
}

test('a page of the configured origin uses the whole API (preflights pass)', async () => {
  const page = await context.newPage();
  try {
    await page.goto(`${ORIGIN}/`);
    const username = `cors-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const r = await page.evaluate(flow, { base: BASE, username });
    assert.equal(r.created, 200);
    assert.equal(r.login, 200);
    assert.equal(r.insert, 200);
    assert.deepEqual(JSON.parse(r.ev.data), { from: 'browser' });
    assert.match(r.ev.lastEventId, /^\d+$/);
  } finally {
    await page.close();
  }
});

test('a page of another origin is refused by the browser', async () => {
  const page = await context.newPage();
  try {
    await page.goto(`${OTHER}/`);
    const r = await page.evaluate(async (base) => {
      const out = {};
      try {
        await fetch(`${base}/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"username":"x","password":"y"}' });
        out.fetch = 'allowed';
      } catch (e) {
        out.fetch = e.name;
      }
      out.es = await new Promise((resolve) => {
        const es = new EventSource(`${base}/events`);
        es.onopen = () => { es.close(); resolve('open'); };
        es.onerror = () => { es.close(); resolve('error'); };
        setTimeout(() => { es.close(); resolve('timeout'); }, 5000);
      });
      return out;
    }, BASE);
    assert.equal(r.fetch, 'TypeError', 'the preflight is refused, fetch fails');
    assert.equal(r.es, 'error', 'the stream has no Access-Control-Allow-Origin for this origin');
  } finally {
    await page.close();
  }
});
