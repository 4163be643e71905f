// broker.mjs: helpers for the Broker (seed 001) tests: users, tokens, JSON requests.
import crypto from 'node:crypto';
import { BASE } from './env.mjs';

/** uniq returns a name no other test run uses. */
export const uniq = (prefix) => `${prefix}-${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`;

/** request sends a JSON body (an object is stringified, a string is sent as is). */
export async function request(method, path, { body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
  if (token) h.authorization = `Bearer ${token}`;
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

/** newUser creates a user and logs in; returns {username, password, id, jwt}. */
export async function newUser(prefix = 'user') {
  const username = uniq(prefix);
  const password = crypto.randomBytes(12).toString('hex');
  const created = await request('POST', '/users', { body: { username, password, info: { test: true } } });
  if (created.status !== 200) throw new Error(`POST /users: ${created.status} ${created.text}`);
  const login = await request('POST', '/login', { body: { username, password } });
  if (login.status !== 200) throw new Error(`POST /login: ${login.status} ${login.text}`);
  return { username, password, id: created.json.id, jwt: login.json.jwt };
}

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

/** signJwt makes a token the way any JWT library does (HMAC-SHA-256 over header.claims). */
export function signJwt(header, claims, secret) {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** decodeJwt returns {header, claims} of a token (no verification). */
export function decodeJwt(token) {
  const [h, c] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), claims: JSON.parse(Buffer.from(c, 'base64url')) };
}

export const nowSec = () => Math.floor(Date.now() / 1000);
