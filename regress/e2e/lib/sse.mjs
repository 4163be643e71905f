// sse.mjs: a small, strict SSE client for tests (node:http, no reconnection of its own).
// It records every frame (comments included) so tests can assert framing byte for byte.
import http from 'node:http';

export class SSEStream {
  /** open connects to url (a full URL) with optional headers; resolves once headers arrive. */
  static open(url, headers = {}) {
    return new Promise((resolve, reject) => {
      const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
        resolve(new SSEStream(req, res));
      });
      req.on('error', reject);
    });
  }

  constructor(req, res) {
    this.req = req;
    this.res = res;
    this.status = res.statusCode;
    this.headers = res.headers;
    this.raw = '';           // every byte received, decoded as UTF-8
    this.events = [];        // {id, event, data, retry}
    this.comments = [];      // comment lines without the leading ':'
    this.closed = false;
    this.waiters = [];
    this.buf = '';
    this.body = '';          // for non-SSE answers (errors)
    res.setEncoding('utf8');
    res.on('data', (chunk) => { this.raw += chunk; this.body += chunk; this.buf += chunk; this.#parse(); this.#wake(); });
    res.on('end', () => { this.closed = true; this.#wake(); });
    res.on('error', () => { this.closed = true; this.#wake(); });
    res.on('close', () => { this.closed = true; this.#wake(); });
  }

  #parse() {
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.buf);
      if (!m) return;
      const block = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      const ev = { id: undefined, event: 'message', data: undefined, retry: undefined };
      let hasData = false;
      const dataLines = [];
      for (const line of block.split(/\r\n|\n|\r/)) {
        if (line.startsWith(':')) { this.comments.push(line.slice(1).replace(/^ /, '')); continue; }
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? '' : line.slice(i + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') { dataLines.push(value); hasData = true; }
        else if (field === 'id') ev.id = value;
        else if (field === 'event') ev.event = value;
        else if (field === 'retry') ev.retry = Number(value);
      }
      if (hasData) { ev.data = dataLines.join('\n'); this.events.push(ev); }
      else if (ev.retry !== undefined || ev.id !== undefined) this.events.push({ ...ev, meta: true });
    }
  }

  #wake() { const w = this.waiters; this.waiters = []; w.forEach((f) => f()); }

  /** waitFor resolves when pred(this) is true; rejects after timeout ms. */
  waitFor(pred, timeout = 5000, what = 'SSE condition') {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${timeout} ms waiting for ${what}; got events ${JSON.stringify(this.dataEvents().slice(-5))}`)), timeout);
      const check = () => {
        if (pred(this)) { clearTimeout(t); resolve(this); return; }
        if (this.closed && !pred(this)) { clearTimeout(t); reject(new Error(`stream closed while waiting for ${what}`)); return; }
        this.waiters.push(check);
      };
      check();
    });
  }

  /** dataEvents: the events that carry data (not retry-only frames). */
  dataEvents() { return this.events.filter((e) => !e.meta); }

  /** waitForEvents resolves with the first n data events. */
  /** ready waits for the stream's retry: line (the sidecar has subscribed it); returns the stream. */
  async ready(timeout = 5000) {
    await this.waitFor((s) => s.raw.includes('retry:'), timeout, 'retry');
    return this;
  }

  async waitForEvents(n, timeout = 5000) {
    await this.waitFor((s) => s.dataEvents().length >= n, timeout, `${n} events`);
    return this.dataEvents().slice(0, n);
  }

  close() { this.req.destroy(); this.closed = true; }

  /** pause stops reading from the socket (a slow consumer). */
  pause() { this.res.pause(); }
}
