// broker_api: seed 001's edges — every 401, input errors (400/405/413/415), a taken
// username, SQL-looking strings stored verbatim, and CORS for the configured origin only.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { BASE, HOST, PORT, sql, closePool, spawnSidecar, sidecarReady } from './lib/env.mjs';
import { SSEStream } from './lib/sse.mjs';
import { request, newUser, uniq, signJwt, nowSec } from './lib/broker.mjs';

after(closePool);

// scripts/test.sh exports both to the sidecar and to this test.
const SECRET = process.env.SECRET;
const ORIGIN = (process.env.ORIGIN || 'http://allowed.example').split(',')[0].trim();

/** assertError checks the status and that the body is {"error": "<text>"} matching re. */
function assertError(res, status, re) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status} ${res.text}`);
  assert.match(res.headers.get('content-type') || '', /application\/json/);
  assert.equal(typeof res.json?.error, 'string', res.text);
  if (re) assert.match(res.json.error, re);
}

test('every kind of bad token is refused with 401 and a JSON error', async () => {
  assert.ok(SECRET, 'SECRET must be exported to this test and the sidecar (scripts/test.sh does)');
  const u = await newUser('auth');
  const body = { event: uniq('auth'), timestamp: nowSec() + 3600, data: 1 };
  const insert = (token, headers) => request('POST', '/insert', { body, token, headers });
  const header = { alg: 'HS256', typ: 'JWT' };
  const exp = nowSec() + 600;

  // The genuine token works, and one made by any JWT library with SECRET works too.
  assert.equal((await insert(u.jwt)).status, 200);
  assert.equal((await insert(signJwt(header, { sub: u.id, exp }, SECRET))).status, 200);

  assertError(await insert(undefined), 401, /missing token/);
  assertError(await insert(undefined, { authorization: 'Basic dXNlcjpwYXNz' }), 401, /token/);
  assertError(await insert('not-a-jwt'), 401, /malformed/);
  assertError(await insert('a.b.c.d'), 401, /malformed/);
  assertError(await insert(`${u.jwt}==`), 401, /malformed|signature/);
  // Wrong signature: another key; and a tampered payload under the genuine signature.
  assertError(await insert(signJwt(header, { sub: u.id, exp }, 'not-the-secret')), 401, /signature/);
  const [h, , sig] = u.jwt.split('.');
  const tampered = `${h}.${Buffer.from(JSON.stringify({ sub: u.id, exp: exp + 99999 })).toString('base64url')}.${sig}`;
  assertError(await insert(tampered), 401, /signature/);
  // alg none (unsigned and signed), and other algorithms.
  const noneTok = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: u.id, exp })).toString('base64url')}.`;
  assertError(await insert(noneTok), 401, /HS256/);
  assertError(await insert(signJwt({ alg: 'none' }, { sub: u.id, exp }, SECRET)), 401, /HS256/);
  assertError(await insert(signJwt({ alg: 'HS512', typ: 'JWT' }, { sub: u.id, exp }, SECRET)), 401, /HS256/);
  // Expired.
  assertError(await insert(signJwt(header, { sub: u.id, exp: nowSec() - 5 }, SECRET)), 401, /expired/);
  // A user that no longer exists: a valid signature for an unknown id, and a deleted user.
  assertError(await insert(signJwt(header, { sub: crypto.randomUUID(), exp }, SECRET)), 401, /no longer exists/);
  const gone = await newUser('gone');
  await sql('delete from herald.users where id = $1', [gone.id]);
  assertError(await insert(gone.jwt), 401, /no longer exists/);
  assertError(await request('GET', `/events/${uniq('x')}`, { token: gone.jwt }), 401, /no longer exists/);
  assertError(await request('GET', `/events/${crypto.randomUUID()}/cancel`, { token: gone.jwt }), 401, /no longer exists/);
  // A subject that is not a user id.
  assertError(await insert(signJwt(header, { sub: 'admin', exp }, SECRET)), 401);

  // The other JWT routes refuse a missing token too.
  assertError(await request('GET', `/events/${uniq('x')}`), 401, /missing token/);
  assertError(await request('GET', `/events/${crypto.randomUUID()}/cancel`), 401, /missing token/);
  // The token also works as ?access_token= (EventSource cannot send headers).
  assert.equal((await request('GET', `/events/${uniq('x')}?access_token=${u.jwt}`)).status, 200);

  // Login: a wrong password and an unknown user are both 401.
  assertError(await request('POST', '/login', { body: { username: u.username, password: 'wrong' } }), 401, /wrong username or password/);
  assertError(await request('POST', '/login', { body: { username: uniq('nobody'), password: 'x' } }), 401, /wrong username or password/);
});

test('a taken username is 400 "username already taken"', async () => {
  const username = uniq('taken');
  assert.equal((await request('POST', '/users', { body: { username, password: 'p1', info: 'first' } })).status, 200);
  const again = await request('POST', '/users', { body: { username, password: 'p2', info: 'second' } });
  assertError(again, 400);
  assert.deepEqual(again.json, { error: 'username already taken' });
});

test('bad input: 400 naming the field, 405, 413, 415', async () => {
  const u = await newUser('input');
  assertError(await request('POST', '/users', { body: '{"username": "a",' }), 400, /not valid JSON/);
  assertError(await request('POST', '/users', { body: '[1,2]' }), 400, /JSON object/);
  assertError(await request('POST', '/users', { body: { password: 'p' } }), 400, /"username"/);
  assertError(await request('POST', '/users', { body: { username: 42, password: 'p' } }), 400, /"username" must be a string/);
  assertError(await request('POST', '/login', { body: { username: 'x' } }), 400, /"password"/);
  const ins = (b) => request('POST', '/insert', { token: u.jwt, body: b });
  assertError(await ins({ timestamp: nowSec(), data: 1 }), 400, /"event"/);
  assertError(await ins({ event: 'e', data: 1 }), 400, /"timestamp"/);
  assertError(await ins({ event: 'e', timestamp: 'tomorrow', data: 1 }), 400, /"timestamp" must be an integer Unix time in seconds/);
  assertError(await ins({ event: 'e', timestamp: 1.5, data: 1 }), 400, /"timestamp"/);
  assertError(await ins({ event: 'e', timestamp: nowSec() }), 400, /"data"/);
  assertError(await ins({ event: 'internal_status', timestamp: nowSec(), data: 1 }), 400, /"event"/);
  assertError(await ins({ event: 'two\nlines', timestamp: nowSec(), data: 1 }), 400, /"event"/);
  assertError(await ins('not json'), 400, /not valid JSON/);

  assertError(await request('POST', '/users', { body: 'username=a&password=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, /application\/json/);
  assertError(await request('POST', '/insert', { token: u.jwt, body: 'x', headers: { 'content-type': 'text/plain' } }), 415);
  assertError(await request('GET', '/users'), 405);
  assertError(await request('POST', '/events'), 405);

  // 2 MB: above the 1 MB default limit.
  const big = JSON.stringify({ username: uniq('big'), password: 'p', info: 'x'.repeat(2 * 1024 * 1024) });
  assertError(await request('POST', '/users', { body: big }), 413, /limit/);
  assertError(await request('POST', '/insert', { token: u.jwt, body: JSON.stringify({ event: 'big', timestamp: nowSec(), data: 'x'.repeat(2 << 20) }) }), 413);
  // Just under the limit is fine.
  const fits = await request('POST', '/insert', { token: u.jwt, body: { event: uniq('fits'), timestamp: nowSec() + 3600, data: 'y'.repeat(900 * 1024) } });
  assert.equal(fits.status, 200, fits.text.slice(0, 200));
});

test('SQL-looking strings are stored and served verbatim', async () => {
  const username = `Robert'); DROP TABLE herald.users; --${crypto.randomBytes(3).toString('hex')}`;
  const password = `' OR '1'='1`;
  const info = { note: "'; DELETE FROM herald.events WHERE true; --", dollar: '$1 $$ \\x00 %s' };
  const created = await request('POST', '/users', { body: { username, password, info } });
  assert.equal(created.status, 200, created.text);
  const rows = await sql('select username, info from herald.users where id = $1', [created.json.id]);
  assert.equal(rows[0].username, username);
  assert.deepEqual(rows[0].info, info);
  const login = await request('POST', '/login', { body: { username, password } });
  assert.equal(login.status, 200, login.text);
  assertError(await request('POST', '/login', { body: { username, password: "' OR 1=1 --" } }), 401);

  const name = `x'); SELECT pg_sleep(5); --${crypto.randomBytes(3).toString('hex')}`;
  const data = { q: "Robert'); DROP TABLE herald.events;--", unicode: 'é ✓ 🎉', nested: [null, true, 1.25] };
  const s = await SSEStream.open(`${BASE}/events`);
  try {
    const ins = await request('POST', '/insert', { token: login.json.jwt, body: { event: name, timestamp: nowSec(), data } });
    assert.equal(ins.status, 200, ins.text);
    await s.waitFor((x) => x.dataEvents().some((e) => e.event === name), 5000, 'the SQL-looking event');
    assert.deepEqual(JSON.parse(s.dataEvents().find((e) => e.event === name).data), data);
  } finally {
    s.close();
  }
  const log = await request('GET', `/events/${encodeURIComponent(name)}`, { token: login.json.jwt });
  assert.equal(log.status, 200, log.text);
  assert.equal(log.json.length, 1);
  assert.equal(log.json[0].event, name);
  assert.deepEqual(log.json[0].data, data);
  assert.equal((await sql('select count(*)::int as n from herald.users where username = $1', [username]))[0].n, 1);
});

/** raw sends a request with node:http (exact headers, e.g. Origin) and returns status and headers. */
function raw(method, path, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port: PORT, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('CORS: the configured origin is allowed, others are refused', async () => {
  for (const path of ['/insert', '/users', '/login', '/events', `/events/${uniq('x')}`]) {
    const ok = await raw('OPTIONS', path, {
      origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type',
    });
    assert.equal(ok.status, 204, `${path}: preflight status`);
    assert.equal(ok.headers['access-control-allow-origin'], ORIGIN);
    const methods = ok.headers['access-control-allow-methods'].split(/\s*,\s*/);
    assert.ok(methods.includes('GET') && methods.includes('POST'), ok.headers['access-control-allow-methods']);
    const allowed = ok.headers['access-control-allow-headers'].toLowerCase().split(/\s*,\s*/);
    for (const h of ['authorization', 'accept', 'content-type']) assert.ok(allowed.includes(h), `${h} in ${allowed}`);

    const refused = await raw('OPTIONS', path, { origin: 'http://evil.example', 'access-control-request-method': 'POST' });
    assert.equal(refused.status, 403, `${path}: ${refused.status}`);
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
    assert.equal(typeof JSON.parse(refused.body).error, 'string');
  }
  // Actual responses carry the header for the allowed origin only.
  const body = JSON.stringify({ username: uniq('nobody'), password: 'x' });
  const post = (origin) => new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port: PORT, method: 'POST', path: '/login', headers: { origin, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => { res.resume(); res.on('end', () => resolve(res)); });
    req.on('error', reject);
    req.end(body);
  });
  const a = await post(ORIGIN);
  assert.equal(a.statusCode, 401);
  assert.equal(a.headers['access-control-allow-origin'], ORIGIN);
  const b = await post('http://evil.example');
  assert.equal(b.headers['access-control-allow-origin'], undefined);
  // The SSE stream too.
  const s = await SSEStream.open(`${BASE}/events`, { origin: ORIGIN });
  try {
    assert.equal(s.status, 200);
    assert.equal(s.headers['access-control-allow-origin'], ORIGIN);
  } finally {
    s.close();
  }
});

test('SECRET: required off loopback; on loopback a random per-start key, logged', async (t) => {
  const port = PORT + 8;
  const run = (env) => spawnSidecar(port, env);

  // Public bind without SECRET: refuses to start, and says why.
  const pub = run({ HOST: '0.0.0.0', SECRET: '' });
  const timer = setTimeout(() => pub.kill('SIGKILL'), 5000);
  const code = await pub.exited;
  clearTimeout(timer);
  assert.notEqual(code, 0, 'the sidecar must not start');
  assert.notEqual(code, null, 'the sidecar must exit by itself, not be killed');
  assert.match(pub.output, /SECRET is not set.*0\.0\.0\.0/);

  // Loopback without SECRET: starts with a random key and logs it.
  const loop = run({ HOST: HOST, SECRET: '' });
  t.after(() => loop.stop());
  const base = await sidecarReady(port, loop);
  assert.match(loop.output, /random per-start key/);
  const u = await newUser('randomkey'); // through the main sidecar (SECRET)
  const login = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: u.username, password: u.password }) });
  assert.equal(login.status, 200);
  const { jwt } = await login.json();
  const body = JSON.stringify({ event: uniq('rk'), timestamp: nowSec() + 3600, data: 1 });
  const ins = (b, token) => fetch(`${b}/insert`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
  assert.equal((await ins(base, jwt)).status, 200, 'its own token works');
  assert.equal((await ins(base, u.jwt)).status, 401, 'a token signed with SECRET does not');
  assert.equal((await ins(BASE, jwt)).status, 401, 'and its token does not work elsewhere');
});

test('auth on: per-user streams accept a /login token by user id (sub) or username (name claim)', async (t) => {
  const port = PORT + 9;
  const child = spawnSidecar(port, { HERALD_AUTH: 'on' });
  t.after(() => child.stop());
  const base = await sidecarReady(port, child);
  const u = await newUser('streamauth'); // token signed with the shared SECRET
  const claims = JSON.parse(Buffer.from(u.jwt.split('.')[1], 'base64url').toString());
  assert.equal(claims.name, u.username, 'the token names the user');

  const open = async (path) => { const s = await SSEStream.open(`${base}${path}`); const st = s.status; s.close(); return st; };
  const tok = encodeURIComponent(u.jwt);
  assert.equal(await open(`/v2/sse?username=${encodeURIComponent(u.username)}&access_token=${tok}`), 200, 'v2 by username');
  assert.equal(await open(`/v4/sse?user_id=${claims.sub}&access_token=${tok}`), 200, 'v4 by user id');
  assert.equal(await open(`/v2/sse?username=someone-else&access_token=${tok}`), 401, 'another user');
  assert.equal(await open(`/v2/sse?username=${encodeURIComponent(u.username)}`), 401, 'no token');
});
