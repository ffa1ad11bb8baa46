/* app.js - the jobmill dashboard: a small single-page app over the /v1 API
 * (no framework, nothing loaded from elsewhere). Views, chosen by the URL
 * hash: #/ the queues (counts per state, throughput sparklines, operator
 * limits, pause and resume) and the live workers; #/workers the workers; #/queue/Q/STATE a
 * queue's jobs in one state, page by page; #/job/ID one job with retry and
 * cancel; #/schedules the cron schedules (next and last run, last job, pause
 * and resume).
 *
 * Safety: job fields are user data. Every value reaches the page through
 * textContent, setAttribute or createElementNS, never innerHTML; links are
 * built from "#/..." plus encodeURIComponent. The page is served with a
 * Content-Security-Policy that allows scripts only from this origin.
 *
 * Refresh: every REFRESH_MS while the tab is visible; a hidden tab stops
 * polling (visibilitychange) and a visible one refreshes at once. The
 * throughput sparklines come from these periodic reads of /v1/queues.
 *
 * Auth: a 401 shows the token form; the token is kept in sessionStorage
 * (this tab only) and sent as a bearer token on every API call.
 */
'use strict';

(function () {
  const STATES = ['queued', 'scheduled', 'running', 'succeeded', 'failed', 'canceled', 'expired'];
  const RETRYABLE = ['failed', 'canceled', 'expired'];
  const CANCELABLE = ['queued', 'scheduled', 'running'];
  const REFRESH_MS = 2000;
  const PAGE_SIZE = 50;
  const SPARK_POINTS = 30;
  const TOKEN_KEY = 'jobmill.token';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const view = $('view');

  /* ---- DOM helpers: text only ---- */

  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') n.textContent = String(v);
      else if (k === 'onclick') n.addEventListener('click', v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids) {
      if (c === null || c === undefined || c === false) continue;
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  function link(hash, text, attrs) {
    return el('a', Object.assign({ href: '#/' + hash.map(encodeURIComponent).join('/') },
                                 attrs || {}), text);
  }

  function statusBadge(s) {
    const known = STATES.includes(s);
    return el('span', { class: 'status' + (known ? ' st-' + s : ''), 'data-status': s },
              String(s));
  }

  function fmtTime(v) {
    if (typeof v !== 'number') return '-';
    return new Date(v * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function fmtJson(v) {
    if (v === null || v === undefined) return '-';
    return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
  }

  function oneLine(v, max) {
    const s = (v === null || v === undefined) ? '' : (typeof v === 'string' ? v : JSON.stringify(v));
    return s.length > max ? s.slice(0, max - 1) + '\u2026' : s;
  }

  /* ---- the API ---- */

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  let needAuth = false;

  async function api(method, path) {
    const headers = { Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    let resp;
    try {
      resp = await fetch('../v1' + path, { method, headers, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      throw new ApiError(0, 'unreachable', 'cannot reach the api (' + e.message + ')');
    }
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (resp.status === 401) {
      askToken(token ? 'That token was not accepted.' : '');
      throw new ApiError(401, 'unauthorized', 'a valid token is required');
    }
    if (!resp.ok) {
      const e = (body && body.error) || {};
      throw new ApiError(resp.status, e.code || 'http_' + resp.status, e.message || resp.statusText);
    }
    return body;
  }

  const enc = encodeURIComponent;

  /* ---- banner, refresh state, token ---- */

  function banner(text, kind) {
    const b = $('banner');
    b.textContent = text || '';
    b.className = kind || '';
    b.hidden = !text;
  }

  function showError(e) {
    banner(e instanceof ApiError ? e.code + ': ' + e.message : String(e), 'error');
  }

  let lastUpdate = null;

  function showRefreshState() {
    const s = $('refresh-state');
    if (needAuth) s.textContent = 'waiting for a token';
    else if (document.hidden) s.textContent = 'paused (tab hidden)';
    else s.textContent = lastUpdate ? 'live \u00b7 updated ' + lastUpdate.toLocaleTimeString() : 'live';
    $('forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY);
  }

  function askToken(msg) {
    needAuth = true;
    $('login').hidden = false;
    view.replaceChildren();
    banner(msg, msg ? 'error' : '');
    $('token-input').focus();
    showRefreshState();
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('token-input').value = '';
    $('login').hidden = true;
    needAuth = false;
    banner('');
    refreshNow();
  });

  $('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    refreshNow();
  });

  /* ---- throughput history from the periodic reads ---- */

  let queues = [];           /* the last /v1/queues answer */
  const history = new Map(); /* queue name -> [{t, done}] */

  async function sampleQueues() {
    const body = await api('GET', '/queues');
    queues = Array.isArray(body.queues) ? body.queues : [];
    const t = performance.now() / 1000;
    for (const q of queues) {
      const h = history.get(q.name) || [];
      h.push({ t, done: (q.succeeded || 0) + (q.failed || 0) });
      while (h.length > SPARK_POINTS + 1) h.shift();
      history.set(q.name, h);
    }
  }

  function rates(name) {
    const h = history.get(name) || [];
    const out = [];
    for (let i = 1; i < h.length; i++) {
      const dt = h[i].t - h[i - 1].t;
      out.push(dt > 0 ? Math.max(0, (h[i].done - h[i - 1].done) / dt) : 0);
    }
    return out;
  }

  function sparkline(r) {
    const w = 120, h = 26;
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.setAttribute('preserveAspectRatio', 'none');
    const base = document.createElementNS(SVG_NS, 'line');
    for (const [k, v] of [['x1', 0], ['y1', h - 1], ['x2', w], ['y2', h - 1]]) base.setAttribute(k, v);
    svg.append(base);
    const max = Math.max(1, ...r);
    const step = w / (SPARK_POINTS - 1);
    const x0 = w - step * (r.length - 1);
    const pts = r.map((v, i) => (x0 + i * step).toFixed(1) + ',' + (h - 2 - (h - 4) * v / max).toFixed(1));
    if (pts.length > 0) {
      const line = document.createElementNS(SVG_NS, 'polyline');
      line.setAttribute('points', pts.length === 1 ? pts[0] + ' ' + pts[0] : pts.join(' '));
      svg.append(line);
    }
    const title = document.createElementNS(SVG_NS, 'title');
    title.textContent = 'finished jobs per second, last ' + r.length + ' reads (max ' + max.toFixed(1) + ')';
    svg.append(title);
    return svg;
  }

  /* ---- actions ---- */

  async function act(method, path, done) {
    try {
      await api(method, path);
      banner(done, 'info');
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) showError(e);
    }
    refreshNow(true);
  }

  function pauseButton(q) {
    const paused = !!q.paused;
    return el('button', {
      type: 'button', class: 'pause-btn', 'data-queue': q.name,
      onclick: () => act('POST', '/queues/' + enc(q.name) + (paused ? '/resume' : '/pause'),
                         'Queue ' + q.name + (paused ? ' resumed' : ' paused')),
    }, paused ? 'Resume' : 'Pause');
  }

  function jobButtons(j) {
    const st = j.status;
    return [
      el('button', {
        type: 'button', class: 'retry-btn', 'data-job-id': j.id,
        disabled: !RETRYABLE.includes(st),
        onclick: () => act('POST', '/jobs/' + enc(j.id) + '/retry', 'Job ' + j.id + ' queued again'),
      }, 'Retry'),
      el('button', {
        type: 'button', class: 'cancel-btn danger', 'data-job-id': j.id,
        disabled: !CANCELABLE.includes(st) || j.cancel_requested === true,
        onclick: () => act('POST', '/jobs/' + enc(j.id) + '/cancel', 'Job ' + j.id + ': cancel sent'),
      }, 'Cancel'),
    ];
  }

  /* ---- views ---- */

  /* A queue's operator limits (docs/limits.md) in a few words, or '-'. */
  function limitsText(l) {
    if (!l || typeof l !== 'object') return '-';
    const parts = [];
    if (l.rate && typeof l.rate === 'object')
      parts.push(l.rate.n + ' per ' + l.rate.per_s + ' s (' + (l.rate.tokens || 0) + ' left)');
    if (typeof l.concurrency === 'number') parts.push('\u2264 ' + l.concurrency + ' running');
    if (l.types && typeof l.types === 'object') {
      for (const [t, v] of Object.entries(l.types)) {
        if (v && typeof v === 'object') parts.push(t + ' \u2264 ' + v.concurrency);
      }
    }
    return parts.length ? parts.join(' \u00b7 ') : '-';
  }

  function queuesTable() {
    if (queues.length === 0) return el('p', { class: 'empty' }, 'No queues yet: submit a job.');
    const head = el('tr', {}, el('th', {}, 'Queue'),
                    ...STATES.map((s) => el('th', { class: 'num' }, s)),
                    el('th', {}, 'Throughput'), el('th', {}, 'Limits'), el('th', {}, ''));
    const rows = queues.map((q) => {
      const r = rates(q.name);
      const now = r.length ? r[r.length - 1] : 0;
      return el('tr', { 'data-queue': q.name },
        el('td', {}, link(['queue', q.name, 'queued'], q.name),
           q.paused ? el('span', { class: 'paused' }, ' paused') : null),
        ...STATES.map((s) => el('td', { class: 'num', 'data-state': s },
                                link(['queue', q.name, s], String(q[s] || 0)))),
        el('td', {}, sparkline(r), el('span', { class: 'rate' }, now.toFixed(1) + '/s')),
        el('td', { class: 'limits', 'data-field': 'limits' }, limitsText(q.limits)),
        el('td', {}, pauseButton(q)));
    });
    return el('table', { id: 'queues' }, el('thead', {}, head), el('tbody', {}, ...rows));
  }

  async function workersTable() {
    const body = await api('GET', '/workers');
    const ws = Array.isArray(body.workers) ? body.workers : [];
    if (ws.length === 0) return el('p', { class: 'empty' }, 'No live workers.');
    const head = el('tr', {}, ...['Worker', 'Host', 'PID', 'Queues', 'Busy', 'Heartbeat', 'Started']
      .map((h) => el('th', {}, h)));
    const rows = ws.map((w) => el('tr', { 'data-worker': w.id },
      el('td', { class: 'mono' }, w.id), el('td', {}, w.host), el('td', { class: 'num' }, w.pid),
      el('td', {}, Array.isArray(w.queues) ? w.queues.join(', ') : ''),
      el('td', { class: 'num' }, (w.busy || 0) + ' / ' + (w.concurrency || 0)),
      el('td', { class: 'num' }, ((w.heartbeat_age_ms || 0) / 1000).toFixed(1) + ' s ago'),
      el('td', {}, fmtTime(w.started_at))));
    return el('table', { id: 'workers' }, el('thead', {}, head), el('tbody', {}, ...rows));
  }

  function scheduleButton(s) {
    const paused = !!s.paused;
    return el('button', {
      type: 'button', class: 'sched-pause-btn', 'data-schedule': s.name,
      onclick: () => act('POST', '/schedules/' + enc(s.name) + (paused ? '/resume' : '/pause'),
                         'Schedule ' + s.name + (paused ? ' resumed' : ' paused')),
    }, paused ? 'Resume' : 'Pause');
  }

  async function renderSchedules() {
    const body = await api('GET', '/schedules');
    const ss = Array.isArray(body.schedules) ? body.schedules : [];
    if (ss.length === 0) {
      return [el('h2', {}, 'Schedules'),
              el('p', { class: 'empty' }, 'No schedules: POST /v1/schedules or janitor.schedules.')];
    }
    const head = el('tr', {}, ...['Schedule', 'Cron', 'Zone', 'Job', 'Missed', 'Next run',
                                  'Last run', 'Last job', ''].map((h) => el('th', {}, h)));
    const rows = ss.map((s) => {
      const job = (s.job && typeof s.job === 'object') ? s.job : {};
      return el('tr', { 'data-schedule': s.name },
        el('td', {}, s.name, s.paused ? el('span', { class: 'paused' }, ' paused') : null,
           s.source === 'yaml' ? el('span', { class: 'hint' }, ' yaml') : null),
        el('td', { class: 'mono' }, s.cron), el('td', {}, s.tz),
        el('td', {}, link(['queue', job.queue || 'default', 'queued'], job.queue || 'default'),
           ' / ' + (job.type || '')),
        el('td', {}, s.missed === 'catch_up' ? 'catch up ' + s.catch_up_max : 'skip'),
        el('td', { 'data-field': 'next_run' }, fmtTime(s.next_run)),
        el('td', { 'data-field': 'last_run' }, fmtTime(s.last_run)),
        el('td', { class: 'mono' }, s.last_job ? link(['job', s.last_job], s.last_job) : '-'),
        el('td', {}, scheduleButton(s)));
    });
    return [el('h2', {}, 'Schedules'),
            el('table', { id: 'schedules' }, el('thead', {}, head), el('tbody', {}, ...rows))];
  }

  async function renderOverview() {
    const workers = await workersTable();
    return [el('h2', {}, 'Queues'), queuesTable(), el('h2', {}, 'Workers'), workers];
  }

  async function renderWorkers() {
    return [el('h2', {}, 'Workers'), await workersTable()];
  }

  const paging = { key: '', cursors: [''], idx: 0 };

  async function renderQueue(r) {
    const key = r.queue + '\u0000' + r.state;
    if (paging.key !== key) Object.assign(paging, { key, cursors: [''], idx: 0 });
    const cursor = paging.cursors[paging.idx];
    const body = await api('GET', '/queues/' + enc(r.queue) + '/jobs?state=' + enc(r.state) +
                           '&limit=' + PAGE_SIZE + (cursor ? '&cursor=' + enc(cursor) : ''));
    const jobs = Array.isArray(body.jobs) ? body.jobs : [];
    const next = typeof body.next_cursor === 'string' ? body.next_cursor : null;
    const q = queues.find((x) => x.name === r.queue) || { name: r.queue };
    const tabs = el('nav', { class: 'tabs' }, ...STATES.map((s) =>
      link(['queue', r.queue, s], s + ' (' + (q[s] || 0) + ')', { class: s === r.state ? 'active' : null })));
    let table;
    if (jobs.length === 0) {
      table = el('p', { class: 'empty' }, 'No ' + r.state + ' jobs' + (paging.idx > 0 ? ' on this page.' : '.'));
    } else {
      const head = el('tr', {}, ...['Job', 'Type', 'Status', 'Attempts', 'Created', 'Finished', 'Error', '']
        .map((h) => el('th', {}, h)));
      const rows = jobs.map((j) => el('tr', { 'data-job-id': j.id },
        el('td', { class: 'mono' }, link(['job', j.id], j.id)), el('td', {}, j.type),
        el('td', {}, statusBadge(j.status)),
        el('td', { class: 'num' }, j.attempts + ' / ' + j.max_attempts),
        el('td', {}, fmtTime(j.created_at)), el('td', {}, fmtTime(j.finished_at)),
        el('td', { class: 'err', title: j.error || '' }, oneLine(j.error, 120)),
        el('td', {}, ...jobButtons(j))));
      table = el('table', { id: 'jobs' }, el('thead', {}, head), el('tbody', {}, ...rows));
    }
    const pager = el('div', { class: 'pager' },
      el('button', { type: 'button', id: 'prev-page', disabled: paging.idx === 0,
                     onclick: () => { paging.idx--; refreshNow(); } }, '\u2190 Previous'),
      el('span', { class: 'muted' }, 'page ' + (paging.idx + 1)),
      el('button', { type: 'button', id: 'next-page', disabled: next === null,
                     onclick: () => { paging.cursors[paging.idx + 1] = next; paging.idx++; refreshNow(); } },
         'Next \u2192'));
    return [el('h2', {}, 'Queue ', el('span', { class: 'mono' }, r.queue),
               q.paused ? el('span', { class: 'paused' }, ' (paused)') : null, ' ',
               q.paused !== undefined ? pauseButton(q) : null),
            tabs, table, pager];
  }

  function field(name, value, cls) {
    return [el('dt', {}, name), el('dd', { 'data-field': name, class: cls || null }, value)];
  }

  function progressValue(p) {
    const n = typeof p === 'number' ? p : (p && typeof p.progress === 'number' ? p.progress : null);
    if (n === null || !isFinite(n)) return null;
    return Math.max(0, Math.min(100, n <= 1 && n > 0 && !Number.isInteger(n) ? n * 100 : n));
  }

  async function renderJob(r) {
    let j;
    try {
      j = await api('GET', '/jobs/' + enc(r.id));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404)
        return [el('p', { class: 'empty' }, 'Job ', el('span', { class: 'mono' }, r.id), ' was not found (never submitted, or its record expired).')];
      throw e;
    }
    const pct = progressValue(j.progress);
    const progress = el('div', {},
      pct !== null ? el('progress', { class: 'progress', max: 100, value: pct }) : null,
      pct !== null ? ' ' + pct.toFixed(0) + '% ' : null,
      el('pre', {}, fmtJson(j.progress)));
    return [
      el('h2', {}, 'Job ', el('span', { class: 'mono', id: 'job-id' }, j.id), ' ',
         el('span', { id: 'job-status' }, statusBadge(j.status))),
      el('div', { class: 'actions' }, ...jobButtons(j).map((b) => {
        b.id = b.classList.contains('retry-btn') ? 'retry' : 'cancel';
        return b;
      }), link(['queue', j.queue, j.status], 'back to ' + j.queue + ' / ' + j.status)),
      el('dl', { class: 'detail', id: 'job-detail' },
        ...field('id', j.id, 'mono'),
        ...field('queue', link(['queue', j.queue, 'queued'], j.queue)),
        ...field('type', j.type),
        ...field('status', j.status + (j.cancel_requested ? ' (cancel requested)' : '')),
        ...field('attempts', j.attempts + ' of ' + j.max_attempts),
        ...field('fence', j.fence === null || j.fence === undefined ? '-' : String(j.fence)),
        ...field('worker', j.worker || '-', 'mono'),
        ...field('timeout', typeof j.timeout_s === 'number' ? j.timeout_s + ' s' : 'handler default'),
        ...field('created', fmtTime(j.created_at)),
        ...field('run at', fmtTime(j.run_at)),
        ...field('started', fmtTime(j.started_at)),
        ...field('finished', fmtTime(j.finished_at)),
        ...field('expires', fmtTime(j.expires_at)),
        ...field('progress', progress),
        ...field('error', el('pre', {}, fmtJson(j.error))),
        ...field('payload', el('pre', {}, fmtJson(j.payload))),
        ...field('result', el('pre', {}, fmtJson(j.result)))),
    ];
  }

  function currentRoute() {
    let parts;
    try {
      parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
    } catch (e) {
      parts = [];
    }
    if (parts[0] === 'queue' && parts[1])
      return { name: 'queue', queue: parts[1], state: STATES.includes(parts[2]) ? parts[2] : 'queued' };
    if (parts[0] === 'job' && parts[1]) return { name: 'job', id: parts[1] };
    if (parts[0] === 'workers') return { name: 'workers' };
    if (parts[0] === 'schedules') return { name: 'schedules' };
    return { name: 'overview' };
  }

  async function render() {
    const r = currentRoute();
    const kids = r.name === 'queue' ? await renderQueue(r)
      : r.name === 'job' ? await renderJob(r)
      : r.name === 'workers' ? await renderWorkers()
      : r.name === 'schedules' ? await renderSchedules()
      : await renderOverview();
    if (needAuth) return;
    view.replaceChildren(...kids);
    view.setAttribute('data-view', r.name);
  }

  /* ---- the refresh loop ---- */

  let timer = null;
  let running = false;
  let again = false;

  async function tick() {
    clearTimeout(timer);
    timer = null;
    if (running) { again = true; return; }
    if (document.hidden || needAuth) { showRefreshState(); return; }
    running = true;
    try {
      await sampleQueues();
      await render();
      lastUpdate = new Date();
      if ($('banner').className === 'error') banner('');
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) showError(e);
    } finally {
      running = false;
      showRefreshState();
      if (again) { again = false; tick(); } else if (!document.hidden && !needAuth) {
        timer = setTimeout(tick, REFRESH_MS);
      }
    }
  }

  /* refreshNow re-reads at once; keepBanner leaves an action's message up. */
  function refreshNow(keepBanner) {
    needAuth = false;
    $('login').hidden = true;
    if (!keepBanner) banner('');
    tick();
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
      showRefreshState();
    } else {
      tick();
    }
  });
  window.addEventListener('hashchange', () => refreshNow());
  tick();
})();
