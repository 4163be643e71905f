// ws.mjs: WebSocket helpers for the session-upload tests: a recording client (npm `ws`)
// and a raw client that writes frames byte by byte (to cut a message in half).
import crypto from 'node:crypto';
import net from 'node:net';
import WebSocket from 'ws';
import { HOST, PORT } from './env.mjs';

export const WS_BASE = `ws://${HOST}:${PORT}`;

/** WSClient records every message and the close; resolves open() once connected. */
export class WSClient {
  static open(path, options = {}) {
    return new Promise((resolve, reject) => {
      const c = new WSClient(new WebSocket(`${WS_BASE}${path}`, options));
      c.ws.once('open', () => resolve(c));
      c.ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => { const e = new Error(`HTTP ${res.statusCode}`); e.status = res.statusCode; e.headers = res.headers; e.body = body; reject(e); });
      });
      c.ws.once('error', reject);
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = [];  // parsed JSON replies, in order
    this.pongs = 0;
    this.close = null;   // {code, reason}
    this.waiters = [];
    ws.on('message', (data, isBinary) => { this.messages.push(isBinary ? { binary: data } : JSON.parse(data.toString())); this.#wake(); });
    ws.on('pong', () => { this.pongs++; this.#wake(); });
    ws.on('close', (code, reason) => { this.close = { code, reason: reason.toString() }; this.#wake(); });
    ws.on('error', () => {});
  }

  #wake() { const w = this.waiters; this.waiters = []; w.forEach((f) => f()); }

  waitFor(pred, what, timeout = 5000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}; messages ${JSON.stringify(this.messages)}, close ${JSON.stringify(this.close)}`)), timeout);
      const check = () => {
        if (pred(this)) { clearTimeout(t); resolve(this); return; }
        this.waiters.push(check);
      };
      check();
    });
  }

  /** reply sends one message and resolves with the next reply. */
  async reply(payload, timeout = 5000) {
    const n = this.messages.length;
    this.send(payload);
    await this.waitFor((c) => c.messages.length > n || (c.close && c.messages.length === n), 'a reply', timeout);
    return this.messages[n];
  }

  send(payload, opts) { this.ws.send(typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload), opts); }

  async closed(timeout = 5000) { await this.waitFor((c) => c.close !== null, 'the close', timeout); return this.close; }

  terminate() { this.ws.terminate(); }
}

/** frame builds one client frame (masked). */
export function frame(payload, { opcode = 1, fin = true } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = data.length;
  let head;
  if (len < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4); head[0] = (fin ? 0x80 : 0) | opcode; head[1] = 0x80 | 126; head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10); head[0] = (fin ? 0x80 : 0) | opcode; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = crypto.randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

/** rawUpgrade opens a TCP connection and performs the handshake; resolves with
 * {sock, status, rest} (rest: bytes received after the response head). */
export function rawUpgrade(path) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(PORT, HOST, () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      sock.off('data', onData);
      resolve({ sock, status: Number(/^HTTP\/1\.1 (\d+)/.exec(buf.toString('latin1'))[1]), rest: buf.subarray(i + 4) });
    };
    sock.on('data', onData);
    sock.on('error', reject);
  });
}
