// reports_api: seed 000 v4 over HTTP — every /v4 route and its errors, the SSE stream
// (snapshot then live, resume with Last-Event-ID, every tab), the static page and
// scripts/update_report_status.sh.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { BASE, HOST, PORT, ROOT, sql, closePool, spawnSidecar, sidecarReady, sleep } from './lib/env.mjs';
import { SSEStream } from './lib/sse.mjs';

after(closePool);

const JSON_HEADERS = { 'content-type': 'application/json' };
const streams = [];
after(() => streams.forEach((s) => s.close()));

async function call(method, route, { user, body, raw, headers } = {}) {
  const url = new URL(route, BASE);
  if (user !== undefined) url.searchParams.set('user_id', user);
  const res = await fetch(url, {
    method,
    headers: body !== undefined || raw !== undefined ? { ...JSON_HEADERS, ...headers } : headers,
    body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, type: res.headers.get('content-type'), json, text, headers: res.headers };
}

const create = async (user) => {
  const r = await call('POST', '/v4/new/report', { user });
  assert.equal(r.status, 201, r.text);
  return r.json.reportId;
};
const put = (user, id, status) => call('PUT', '/v4/report', { user, body: { id, status } });

async function openSSE(user, headers = {}) {
  const s = await SSEStream.open(`${BASE}/v4/sse?user_id=${user}`, headers);
  streams.push(s);
  return s;
}
const updates = (s) => s.dataEvents().filter((e) => e.event === 'report_status_update');

function runScript(args, env = {}) {
  return new Promise((resolve) => {
    execFile(path.join(ROOT, 'scripts/update_report_status.sh'), args, { env: { ...process.env, HOST, PORT: String(PORT), ...env } },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('every /v4 route refuses a missing or malformed user_id with 400 JSON', async () => {
  const routes = [['POST', '/v4/new/report'], ['GET', '/v4/reports'], ['PUT', '/v4/report'], ['GET', '/v4/sse'],
    ['GET', '/v4/report/history']];
  for (const [method, route] of routes) {
    for (const user of [undefined, '', 'demo', 'not-a-uuid', `${randomUUID()}x`, randomUUID().replace(/-/g, '')]) {
      const r = await call(method, route, { user, body: method === 'PUT' ? { id: randomUUID(), status: 'queued' } : undefined });
      assert.equal(r.status, 400, `${method} ${route} user_id=${user}: ${r.text}`);
      assert.match(r.type, /application\/json/);
      assert.equal(typeof r.json.error, 'string');
      assert.match(r.json.error, /user_id/);
    }
  }
});

test('wrong methods answer 405 and unknown /v4 paths 404, both as JSON', async () => {
  const user = randomUUID();
  for (const [method, route] of [['GET', '/v4/new/report'], ['POST', '/v4/reports'], ['GET', '/v4/report'], ['POST', '/v4/sse'],
    ['DELETE', '/v4/report']]) {
    const r = await call(method, route, { user });
    assert.equal(r.status, 405, `${method} ${route}`);
    assert.equal(typeof r.json.error, 'string');
  }
  const r = await call('GET', '/v4/reports/extra', { user });
  assert.equal(r.status, 404);
  assert.equal(typeof r.json.error, 'string');
});

test('GET /v4/reports of a user without reports is an empty array', async () => {
  const r = await call('GET', '/v4/reports', { user: randomUUID() });
  assert.equal(r.status, 200);
  assert.match(r.type, /application\/json/);
  assert.deepEqual(r.json, []);
});

test('POST /v4/new/report answers 201 with a pending report; GET /v4/reports lists them oldest first', async () => {
  const user = randomUUID();
  const r = await call('POST', '/v4/new/report', { user: user.toUpperCase() });
  assert.equal(r.status, 201, r.text);
  assert.match(r.type, /application\/json/);
  assert.deepEqual(Object.keys(r.json).sort(), ['reportId', 'reportStatus', 'userId']);
  assert.equal(r.json.userId, user);
  assert.equal(r.json.reportStatus, 'pending');
  assert.match(r.json.reportId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const second = await create(user);
  const list = await call('GET', '/v4/reports', { user });
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.map((x) => x.reportId), [r.json.reportId, second]);
  for (const x of list.json) {
    assert.equal(x.userId, user);
    assert.equal(x.reportStatus, 'pending');
    assert.equal(x.version, 1);
    assert.ok(!Number.isNaN(Date.parse(x.createdAt)) && !Number.isNaN(Date.parse(x.updatedAt)));
  }
  // Another user sees none of them.
  assert.deepEqual((await call('GET', '/v4/reports', { user: randomUUID() })).json, []);
});

test('PUT /v4/report walks the table; 409 for a transition outside it, nothing changes', async () => {
  const user = randomUUID();
  const id = await create(user);
  let version = 1;
  for (const status of ['queued', 'processing', 'failed', 'pending', 'canceled', 'pending', 'queued', 'canceled']) {
    const r = await put(user, id, status);
    assert.equal(r.status, 200, `→ ${status}: ${r.text}`);
    assert.equal(r.json.reportId, id);
    assert.equal(r.json.userId, user);
    assert.equal(r.json.reportStatus, status);
    assert.equal(r.json.version, ++version);
  }
  for (const status of ['processing', 'completed', 'failed', 'queued', 'canceled']) {
    const r = await put(user, id, status); // from canceled only → pending is allowed
    assert.equal(r.status, 409, `canceled → ${status}: ${r.text}`);
    assert.match(r.type, /application\/json/);
    assert.equal(typeof r.json.error, 'string');
  }
  const [row] = await sql('select status::text, version from herald.reports where id = $1', [id]);
  assert.deepEqual(row, { status: 'canceled', version });
  // completed is terminal
  const id2 = await create(user);
  for (const s of ['queued', 'processing', 'completed']) assert.equal((await put(user, id2, s)).status, 200);
  for (const s of ['pending', 'queued', 'processing', 'failed', 'canceled', 'completed']) {
    assert.equal((await put(user, id2, s)).status, 409, `completed → ${s}`);
  }
  const [row2] = await sql('select status::text, version from herald.reports where id = $1', [id2]);
  assert.deepEqual(row2, { status: 'completed', version: 4 }, 'the refused transitions changed nothing');
});

test('PUT /v4/report: unknown report and another user\'s report are both 404, and the other report is untouched', async () => {
  const owner = randomUUID(), intruder = randomUUID();
  const id = await create(owner);
  const unknown = await put(owner, randomUUID(), 'queued');
  assert.equal(unknown.status, 404);
  assert.equal(typeof unknown.json.error, 'string');
  const foreign = await put(intruder, id, 'queued');
  assert.equal(foreign.status, 404);
  assert.equal(typeof foreign.json.error, 'string');
  const [row] = await sql('select status::text, version from herald.reports where id = $1', [id]);
  assert.deepEqual(row, { status: 'pending', version: 1 });
});

test('PUT /v4/report refuses bad bodies with 400 JSON', async () => {
  const user = randomUUID();
  const id = await create(user);
  const bodies = [
    ['', 'empty'], ['not json', 'not JSON'], ['[1,2]', 'array'], ['"x"', 'string'], ['{}', 'no fields'],
    [JSON.stringify({ id }), 'no status'], [JSON.stringify({ status: 'queued' }), 'no id'],
    [JSON.stringify({ id: 42, status: 'queued' }), 'numeric id'], [JSON.stringify({ id: 'abc', status: 'queued' }), 'id not a UUID'],
    [JSON.stringify({ id, status: 'bogus' }), 'unknown status'], [JSON.stringify({ id, status: 7 }), 'numeric status'],
    [JSON.stringify({ id, status: null }), 'null status'], ['{"id":"' + id + '","status":"queued"', 'truncated'],
  ];
  for (const [raw, what] of bodies) {
    const r = await call('PUT', '/v4/report', { user, raw });
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
    assert.match(r.type, /application\/json/);
    assert.equal(typeof r.json.error, 'string', what);
  }
  const [row] = await sql('select status::text, version from herald.reports where id = $1', [id]);
  assert.deepEqual(row, { status: 'pending', version: 1 });
});

test('GET /v4/report/history lists every version with its time; 404 for others, 400 for a bad id', async () => {
  const user = randomUUID();
  const id = await create(user);
  for (const s of ['queued', 'processing', 'completed']) assert.equal((await put(user, id, s)).status, 200);
  await put(user, id, 'pending'); // refused: not in the history
  const r = await call('GET', `/v4/report/history?id=${id}`, { user });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.map((h) => [h.version, h.status, h.previousStatus]),
    [[1, 'pending', null], [2, 'queued', 'pending'], [3, 'processing', 'queued'], [4, 'completed', 'processing']]);
  const times = r.json.map((h) => Date.parse(h.at));
  assert.ok(times.every((t, i) => !Number.isNaN(t) && (i === 0 || t >= times[i - 1])), 'times ascend');
  assert.equal((await call('GET', `/v4/report/history?id=${id}`, { user: randomUUID() })).status, 404);
  assert.equal((await call('GET', `/v4/report/history?id=${randomUUID()}`, { user })).status, 404);
  assert.equal((await call('GET', '/v4/report/history?id=nope', { user })).status, 400);
  assert.equal((await call('GET', '/v4/report/history', { user })).status, 400);
});

test('GET /v4/sse starts with the current reports, then goes on live with ids', async () => {
  const user = randomUUID();
  const a = await create(user), b = await create(user);
  assert.equal((await put(user, b, 'queued')).status, 200);
  const s = await openSSE(user);
  assert.equal(s.status, 200);
  assert.match(s.headers['content-type'], /^text\/event-stream/);
  assert.equal(s.headers['cache-control'], 'no-cache');
  await s.waitFor((x) => updates(x).length >= 2, 5000, 'snapshot');
  const snap = updates(s).slice(0, 2);
  assert.deepEqual(snap.map((e) => JSON.parse(e.data)), [{ id: a, status: 'pending' }, { id: b, status: 'queued' }]);
  // The last snapshot frame carries the stream position: 3 messages so far (2 creations, 1 transition).
  assert.equal(snap[1].id, '3');
  assert.equal((await put(user, a, 'canceled')).status, 200);
  await s.waitFor((x) => updates(x).length >= 3, 5000, 'live update');
  const live = updates(s)[2];
  assert.deepEqual(JSON.parse(live.data), { id: a, status: 'canceled' });
  assert.equal(live.id, '4');
  const c = await create(user);
  await s.waitFor((x) => updates(x).length >= 4, 5000, 'creation');
  assert.deepEqual(JSON.parse(updates(s)[3].data), { id: c, status: 'pending' });
  assert.equal(updates(s)[3].id, '5');
});

test('GET /v4/sse of a user without reports is open and shows the first creation', async () => {
  const user = randomUUID();
  const s = await openSSE(user);
  assert.equal(s.status, 200);
  const id = await create(user);
  await s.waitFor((x) => updates(x).length >= 1, 5000, 'creation');
  assert.deepEqual(updates(s).map((e) => [e.id, JSON.parse(e.data)]), [['1', { id, status: 'pending' }]]);
});

test('every open stream (tab) of the user gets each update; other users get nothing', async () => {
  const user = randomUUID(), other = randomUUID();
  const id = await create(user);
  const tabs = [await openSSE(user), await openSSE(user), await openSSE(user)];
  const stranger = await openSSE(other);
  for (const t of tabs) await t.waitFor((x) => updates(x).length >= 1, 5000, 'snapshot');
  assert.equal((await put(user, id, 'queued')).status, 200);
  for (const t of tabs) {
    await t.waitFor((x) => updates(x).length >= 2, 5000, 'update in every tab');
    assert.deepEqual(JSON.parse(updates(t)[1].data), { id, status: 'queued' });
  }
  await sleep(200);
  assert.equal(updates(stranger).length, 0);
});

test('Last-Event-ID resumes exactly after the gap, without the snapshot', async () => {
  const user = randomUUID();
  const id = await create(user);               // seq 1
  await put(user, id, 'queued');               // seq 2
  const s = await openSSE(user);
  await s.waitFor((x) => updates(x).length >= 1, 5000, 'snapshot');
  const last = updates(s).at(-1).id;
  assert.equal(last, '2');
  s.close();
  await put(user, id, 'processing');           // seq 3, while disconnected
  await put(user, id, 'completed');            // seq 4
  const r = await openSSE(user, { 'Last-Event-ID': last });
  await r.waitFor((x) => updates(x).length >= 2, 5000, 'replay');
  await sleep(200);
  assert.deepEqual(updates(r).map((e) => [e.id, JSON.parse(e.data).status]), [['3', 'processing'], ['4', 'completed']]);
  const bad = await openSSE(user, { 'Last-Event-ID': 'abc' });
  assert.equal(bad.status, 400);
});

test('a stream opened while transitions are committing ends in the database\'s state (snapshot then live, no loss)', async () => {
  const user = randomUUID();
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await create(user));
  const cycle = ['queued', 'canceled', 'pending'];
  let stop = false;
  const writer = (async () => {
    let n = 0;
    while (!stop) {
      const id = ids[n % ids.length];
      await put(user, id, cycle[Math.floor(n / ids.length) % cycle.length]);
      n++;
    }
    return n;
  })();
  await sleep(50);
  const tabs = [];
  for (let i = 0; i < 5; i++) { tabs.push(await openSSE(user)); await sleep(20); }
  await sleep(150);
  stop = true;
  const writes = await writer;
  assert.ok(writes > 10, `only ${writes} transitions ran`);
  const rows = await sql('select id::text, status::text from herald.reports where owner = $1', [user]);
  const want = Object.fromEntries(rows.map((r) => [r.id, r.status]));
  const [{ pos }] = await sql('select herald.stream_position($1) as pos', [`user:${user}`]);
  for (const t of tabs) {
    await t.waitFor((x) => updates(x).some((e) => e.id === String(pos)), 5000, `seq ${pos}`);
    const seen = {};
    let prev = 0;
    for (const e of updates(t)) {
      const d = JSON.parse(e.data);
      seen[d.id] = d.status;
      if (e.id !== undefined && e.id !== '') { assert.ok(Number(e.id) >= prev, 'ids never go back'); prev = Number(e.id); }
    }
    assert.deepEqual(seen, want);
  }
});

test('the web page and its files are served with their content types; no way out of the folder', async () => {
  for (const [p, type, needle] of [['/', /^text\/html/, 'Create New Report'], ['/index.html', /^text\/html/, '<html'],
    ['/app.js', /^text\/javascript/, 'EventSource'], ['/style.css', /^text\/css/, '.status-pending']]) {
    const res = await fetch(`${BASE}${p}`);
    assert.equal(res.status, 200, p);
    assert.match(res.headers.get('content-type'), type, p);
    assert.ok((await res.text()).includes(needle), p);
  }
  for (const p of ['/../Makefile', '/%2e%2e/Makefile', '/..%2fMakefile', '/static/../../Makefile', '/.git/HEAD', '/nope.html']) {
    const res = await fetch(`${BASE}${p}`);
    assert.equal(res.status, 404, p);
    assert.match(res.headers.get('content-type'), /application\/json/, p);
  }
  assert.equal((await fetch(`${BASE}/index.html`, { method: 'POST' })).status, 404);
});

test('update_report_status.sh changes a report, and fails with the server\'s message otherwise', async () => {
  const user = randomUUID();
  const id = await create(user);
  const ok = await runScript([user, id, 'queued']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /PUT .*\/v4\/report\?user_id=/);
  assert.ok(ok.stdout.includes(`{"id":"${id}","status":"queued"}`), ok.stdout);
  assert.match(ok.stdout, /<- 200/);
  assert.match(ok.stdout, /"reportStatus" ?: ?"queued"/);

  const refused = await runScript([user, id, 'completed']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /409/);
  assert.match(refused.stderr, /queued.*completed|transition/i);

  const unknown = await runScript([user, randomUUID(), 'queued']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /404.*not found/);

  const badUser = await runScript(['nobody', id, 'queued']);
  assert.equal(badUser.code, 1);
  assert.match(badUser.stderr, /400.*user_id/);

  // Arguments are JSON-escaped: quotes cannot inject a different status.
  const inject = await runScript([user, `${id}","status":"processing`, 'canceled']);
  assert.equal(inject.code, 1);
  assert.match(inject.stderr, /400/);
  const [row] = await sql('select status::text from herald.reports where id = $1', [id]);
  assert.equal(row.status, 'queued');

  const down = await runScript([user, id, 'processing'], { PORT: '1' });
  assert.equal(down.code, 3);
  assert.match(down.stderr, /cannot reach/);

  const usage = await runScript([user, id]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage/);
});

test('with auth required, every /v4 route needs a token of that very user (401 otherwise)', async (t) => {
  // A second sidecar of our own, same database, auth switched on (as off a loopback bind).
  const { createHmac } = await import('node:crypto');
  const port = PORT + 9, secret = 'reports-api-test-secret-0123456789abcdef';
  const child = spawnSidecar(port, { HERALD_AUTH: 'on', SECRET: secret });
  t.after(() => child.stop());
  const base = await sidecarReady(port, child);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const jwt = (sub) => {
    const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
    return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
  };
  const user = randomUUID(), other = randomUUID();
  const go = (method, route, token, body) => fetch(`${base}${route}${route.includes('?') ? '&' : '?'}user_id=${user}`, {
    method, body: body && JSON.stringify(body),
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? JSON_HEADERS : {}) },
  });
  for (const [method, route] of [['POST', '/v4/new/report'], ['GET', '/v4/reports'], ['GET', '/v4/sse'],
    ['GET', `/v4/report/history?id=${randomUUID()}`]]) {
    for (const token of [undefined, 'garbage', jwt(other)]) {
      const r = await go(method, route, token);
      assert.equal(r.status, 401, `${method} ${route} token=${token && token.slice(0, 10)}`);
      assert.equal(typeof (await r.json()).error, 'string');
    }
  }
  const created = await go('POST', '/v4/new/report', jwt(user));
  assert.equal(created.status, 201);
  const id = (await created.json()).reportId;
  assert.equal((await go('PUT', '/v4/report', undefined, { id, status: 'queued' })).status, 401);
  assert.equal((await go('PUT', '/v4/report', jwt(user), { id, status: 'queued' })).status, 200);
  // EventSource cannot set headers: the token also works as ?access_token=
  const s = await SSEStream.open(`${base}/v4/sse?user_id=${user}&access_token=${jwt(user)}`);
  streams.push(s);
  assert.equal(s.status, 200);
  await s.waitFor((x) => updates(x).length >= 1, 5000, 'snapshot');
  assert.deepEqual(JSON.parse(updates(s)[0].data), { id, status: 'queued' });
  // and the script passes HERALD_TOKEN
  const viaScript = await runScript([user, id, 'processing'], { PORT: String(port), HERALD_TOKEN: jwt(user) });
  assert.equal(viaScript.code, 0, viaScript.stderr);
  const noToken = await runScript([user, id, 'completed'], { PORT: String(port) });
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /401/);
  s.close();
  await child.stop();
});
