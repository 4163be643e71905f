// app.js — the report status page (seed 000 v4). No framework, no build step.
//
// Live data comes from one EventSource on /v4/sse?user_id=U. Without a Last-Event-ID the
// server starts that stream with one report_status_update per existing report (a snapshot
// taken together with the stream position), then continues live, so nothing that happens
// while the page loads is missed. When the connection drops, EventSource reconnects by
// itself and sends Last-Event-ID: the server replays exactly what was missed. If the browser
// gives up (an HTTP error such as 503 closes an EventSource for good) or the server answers
// "reset" (the gap is no longer in the outbox), the page opens a fresh stream: a new
// snapshot. While not connected the page says "Reconnecting…".
'use strict';

(() => {
  const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const STATUSES = new Set(['pending', 'queued', 'processing', 'completed', 'failed', 'canceled']);
  const RETRY_MS = 2000;
  const $ = (id) => document.getElementById(id);

  let user = null;        // the logged-in user id
  let es = null;          // the EventSource
  let everLive = false;   // the stream has been open once (then a drop is "reconnecting")
  let retryTimer = null;
  // Off a loopback bind the sidecar wants a token whose sub is the user (e.g. from the
  // broker's POST /login): open the page with ?access_token=<jwt>.
  let token = null;
  const reports = new Map(); // report id -> { row, badge, historyButton, historyRow, status }

  // ---------- helpers ----------
  function newUuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function url(path, params = {}, withToken = false) {
    const q = new URLSearchParams({ user_id: user, ...params });
    if (withToken && token) q.set('access_token', token);
    return `${path}?${q}`;
  }

  async function api(method, path, { params, body } = {}) {
    let res;
    try {
      res = await fetch(url(path, params), {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      throw new Error('the server cannot be reached');
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (!res.ok) {
      const err = new Error((data && data.error) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function showError(el, message) {
    el.textContent = message || '';
    el.hidden = !message;
  }

  function announce(text) { $('announce').textContent = text; }

  function setConn(state) {
    const conn = $('conn');
    conn.dataset.state = state;
    $('conn-text').textContent = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', refused: 'Not connected' }[state];
  }

  // ---------- the table ----------
  function setBadge(badge, status) {
    badge.textContent = status;
    badge.className = `status status-${STATUSES.has(status) ? status : 'unknown'}`;
    badge.dataset.status = status;
  }

  // upsert shows report id with status, adding a row the first time it is seen.
  function upsert(id, status, { live = true } = {}) {
    let r = reports.get(id);
    if (!r) {
      const row = document.createElement('tr');
      row.dataset.reportId = id;
      const num = document.createElement('td');
      num.textContent = String(reports.size + 1);
      const idCell = document.createElement('td');
      idCell.className = 'id';
      idCell.textContent = id;
      const statusCell = document.createElement('td');
      const badge = document.createElement('span');
      statusCell.append(badge);
      const histCell = document.createElement('td');
      const historyButton = document.createElement('button');
      historyButton.type = 'button';
      historyButton.className = 'link';
      historyButton.textContent = 'Show history';
      historyButton.setAttribute('aria-expanded', 'false');
      historyButton.setAttribute('aria-label', `Show history of report ${id}`);
      histCell.append(historyButton);
      row.append(num, idCell, statusCell, histCell);
      $('reports-body').append(row);
      r = { row, badge, historyButton, historyRow: null, status: null };
      historyButton.addEventListener('click', () => toggleHistory(id));
      reports.set(id, r);
      $('empty').hidden = true;
    }
    if (r.status === status) return;
    const before = r.status;
    r.status = status;
    setBadge(r.badge, status);
    if (before !== null && live) {
      r.row.classList.remove('flash');
      void r.row.offsetWidth; // restart the animation
      r.row.classList.add('flash');
      announce(`Report ${id.slice(0, 8)} is now ${status}.`);
    }
    if (r.historyRow) loadHistory(id);
  }

  function clearTable() {
    reports.clear();
    $('reports-body').replaceChildren();
    $('empty').hidden = false;
  }

  // ---------- history ----------
  function cell(content) {
    const td = document.createElement('td');
    if (content instanceof Node) td.append(content); else td.textContent = content;
    return td;
  }

  function badge(status) {
    const b = document.createElement('span');
    setBadge(b, status);
    return b;
  }

  // loadHistory fills the open history row of report id with its versions and times.
  async function loadHistory(id) {
    const r = reports.get(id);
    if (!r || !r.historyRow) return;
    const row = r.historyRow;
    try {
      const entries = await api('GET', '/v4/report/history', { params: { id } });
      if (r.historyRow !== row) return;
      const wrap = document.createElement('div');
      wrap.className = 'history';
      const table = document.createElement('table');
      const cap = document.createElement('caption');
      cap.textContent = `History of report ${id}`;
      const thead = document.createElement('thead');
      const head = document.createElement('tr');
      for (const name of ['Version', 'Status', 'From', 'Time']) {
        const th = document.createElement('th');
        th.scope = 'col';
        th.textContent = name;
        head.append(th);
      }
      thead.append(head);
      const tbody = document.createElement('tbody');
      for (const e of entries) {
        const tr = document.createElement('tr');
        const at = new Date(e.at);
        const time = document.createElement('time');
        time.dateTime = e.at;
        time.textContent = Number.isNaN(at.getTime()) ? String(e.at) : at.toLocaleString();
        tr.append(cell(String(e.version)), cell(badge(e.status)),
          cell(e.previousStatus ? e.previousStatus : '(created)'), cell(time));
        tbody.append(tr);
      }
      table.append(cap, thead, tbody);
      wrap.append(table);
      row.firstChild.replaceChildren(wrap);
    } catch (e) {
      if (r.historyRow === row) row.firstChild.textContent = `Could not load the history: ${e.message}`;
    }
  }

  function toggleHistory(id) {
    const r = reports.get(id);
    if (r.historyRow) {
      r.historyRow.remove();
      r.historyRow = null;
      r.historyButton.textContent = 'Show history';
      r.historyButton.setAttribute('aria-expanded', 'false');
      return;
    }
    const tr = document.createElement('tr');
    tr.className = 'history-row';
    tr.id = `history-${id}`;
    const td = document.createElement('td');
    td.colSpan = 4;
    td.textContent = 'Loading…';
    tr.append(td);
    r.row.after(tr);
    r.historyRow = tr;
    r.historyButton.textContent = 'Hide history';
    r.historyButton.setAttribute('aria-expanded', 'true');
    r.historyButton.setAttribute('aria-controls', tr.id);
    loadHistory(id);
  }

  // ---------- the live stream ----------
  function disconnect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (es) { es.close(); es = null; }
  }

  function connect() {
    disconnect();
    setConn(everLive ? 'reconnecting' : 'connecting');
    const source = new EventSource(url('/v4/sse', {}, true));
    es = source;
    source.onopen = () => {
      if (es !== source) return;
      everLive = true;
      setConn('live');
      showError($('app-error'), '');
    };
    source.addEventListener('report_status_update', (e) => {
      if (es !== source) return;
      let d;
      try { d = JSON.parse(e.data); } catch { return; }
      if (d && typeof d.id === 'string' && typeof d.status === 'string') upsert(d.id, d.status);
    });
    // The server can no longer replay what we missed: start over from a fresh snapshot.
    source.addEventListener('reset', () => {
      if (es !== source) return;
      clearTable();
      connect();
    });
    source.onerror = () => {
      if (es !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up: the server answered with an error. Ask a plain route why:
        // refused (400, 401) is final and shown; unavailable (503, down) is retried.
        setConn('reconnecting');
        api('GET', '/v4/reports').then(() => null, (e) => e).then((e) => {
          if (es !== source) return;
          if (e && e.status >= 400 && e.status < 500) {
            setConn('refused');
            showError($('app-error'), `The live stream was refused: ${e.message}`);
            return;
          }
          retryTimer = setTimeout(connect, RETRY_MS);
        });
      } else {
        setConn(everLive ? 'reconnecting' : 'connecting');
      }
    };
  }

  // ---------- log in / out ----------
  function login(id) {
    const value = id.trim().toLowerCase();
    const input = $('user-id');
    if (!UUID_RE.test(value)) {
      input.setAttribute('aria-invalid', 'true');
      showError($('login-error'), value
        ? `"${value.slice(0, 60)}" is not a UUID. A user ID looks like 3f0c2a7e-9b1d-4c5e-8a6f-0d2b4c6e8f10; use "Generate a UUID" to get one.`
        : 'Enter your user ID (a UUID), or use "Generate a UUID".');
      input.focus();
      return false;
    }
    input.removeAttribute('aria-invalid');
    showError($('login-error'), '');
    user = value;
    try { localStorage.setItem('herald.userId', user); } catch { /* private mode */ }
    setUrlUser(user); // a reload (or a bookmark) keeps the user logged in
    $('who').textContent = user;
    $('login').hidden = true;
    $('app').hidden = false;
    everLive = false;
    clearTable();
    connect();
    $('create').focus();
    return true;
  }

  function setUrlUser(id) {
    const q = new URLSearchParams(location.search);
    if (id) q.set('user_id', id); else q.delete('user_id');
    const s = q.toString();
    history.replaceState(null, '', `${location.pathname}${s ? `?${s}` : ''}`);
  }

  function logout() {
    disconnect();
    user = null;
    setUrlUser(null);
    clearTable();
    $('app').hidden = true;
    $('login').hidden = false;
    $('user-id').focus();
  }

  async function createReport() {
    const button = $('create');
    button.disabled = true;
    showError($('app-error'), '');
    try {
      const r = await api('POST', '/v4/new/report');
      if (!reports.has(r.reportId)) upsert(r.reportId, r.reportStatus, { live: false });
      announce(`Report ${r.reportId.slice(0, 8)} created, ${r.reportStatus}.`);
    } catch (e) {
      showError($('app-error'), `Could not create a report: ${e.message}`);
    } finally {
      button.disabled = false;
      button.focus();
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', (e) => { e.preventDefault(); login($('user-id').value); });
    $('generate').addEventListener('click', () => {
      const input = $('user-id');
      input.value = newUuid();
      input.removeAttribute('aria-invalid');
      showError($('login-error'), '');
      input.focus();
    });
    $('logout').addEventListener('click', logout);
    $('create').addEventListener('click', createReport);
    const query = new URLSearchParams(location.search);
    token = query.get('access_token');
    const fromUrl = query.get('user_id');
    let saved = null;
    try { saved = localStorage.getItem('herald.userId'); } catch { /* private mode */ }
    if (fromUrl) { $('user-id').value = fromUrl; login(fromUrl); }
    else if (saved) $('user-id').value = saved;
  });
})();
