// dashboard_test.js - the dashboard (/ui/ of jobmill-api) in headless
// Chromium, driven by playwright-core (run by tests/ui/run, which installs it
// and Debian's chromium). Starts its own redis-server, api (auth on) and
// worker on free loopback ports, from JOBMILL_BIN_DIR; saves screenshots in
// JOBMILL_UI_OUT. Every wait is a condition with a deadline.
//
// Checks: the token form (auth on), a submitted job appearing by itself
// (auto-refresh), a queue's jobs by state, a job's detail, pause from the
// page, retry of a failed job (seen queued again), cancel, resume, the
// workers table, the schedules view (a schedule firing, pause and resume
// from the page), a queue's limits in the queues table, sparklines, an XSS
// payload and error rendered as inert text, no CSP violation or script
// error, and no polling while the tab is hidden.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BIN = process.env.JOBMILL_BIN_DIR;
const OUT = process.env.JOBMILL_UI_OUT;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const REDIS = process.env.REDIS_SERVER || 'redis-server';
const TOKEN = 'ui-test-token-' + process.pid;

const procs = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jm-ui-'));

function log(msg) { console.log('ui: ' + msg); }

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function start(name, cmd, args, env) {
  const out = fs.openSync(path.join(OUT, name + '.log'), 'w');
  const p = spawn(cmd, args, { env: Object.assign({}, process.env, env), stdio: ['ignore', out, out] });
  p.name = name;
  procs.push(p);
  return p;
}

async function waitFor(cond, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what + (last ? ': ' + last.message : ''));
    await new Promise((r) => setTimeout(r, 50));
  }
}

function request(method, url, body, token) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const headers = {};
    if (data) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = data.length; }
    if (token) headers.Authorization = 'Bearer ' + token;
    const req = http.request(url, { method, headers, timeout: 10000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = JSON.parse(text); } catch (e) { json = null; }
        resolve({ status: res.statusCode, headers: res.headers, json, text });
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    if (data) req.write(data);
    req.end();
  });
}

async function main() {
  assert.ok(BIN && fs.existsSync(path.join(BIN, 'jobmill-api')), 'JOBMILL_BIN_DIR must hold the binaries');
  fs.mkdirSync(OUT, { recursive: true });
  const tokens = path.join(tmp, 'tokens');
  fs.writeFileSync(tokens, TOKEN + '\n');

  const redisPort = await freePort();
  start('redis', REDIS, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '',
                         '--appendonly', 'no', '--dir', tmp]);
  const redisUrl = 'redis://127.0.0.1:' + redisPort + '/0';
  const apiPort = await freePort();
  const base = 'http://127.0.0.1:' + apiPort;
  const metricsPort = await freePort();
  await waitFor(() => new Promise((resolve) => {
    const s = net.connect(redisPort, '127.0.0.1', () => { s.end(); resolve(true); });
    s.on('error', () => resolve(false));
  }), 'redis-server');
  start('api', path.join(BIN, 'jobmill-api'), [], {
    REDIS_URL: redisUrl, JOBMILL_LISTEN: '127.0.0.1:' + apiPort, JOBMILL_API_DRAIN_DELAY_MS: '0',
    JOBMILL_API_TOKENS_FILE: tokens });
  start('worker', path.join(BIN, 'jobmill-worker'), [], {
    REDIS_URL: redisUrl, JOBMILL_METRICS_LISTEN: '127.0.0.1:' + metricsPort,
    JOBMILL_QUEUES: 'default,emails,images', JOBMILL_CONCURRENCY: '4',
    JOBMILL_HEARTBEAT_MS: '500', JOBMILL_BACKOFF_BASE_MS: '50', JOBMILL_BACKOFF_MAX_MS: '100' });
  const janitorPort = await freePort();
  start('janitor', path.join(BIN, 'jobmill-janitor'), [], {
    REDIS_URL: redisUrl, JOBMILL_METRICS_LISTEN: '127.0.0.1:' + janitorPort,
    JOBMILL_JANITOR_INTERVAL_MS: '100' });
  await waitFor(async () => (await request('GET', base + '/readyz')).status === 200, 'api ready', 30000);
  await waitFor(async () => (await request('GET', 'http://127.0.0.1:' + metricsPort + '/readyz')).status === 200,
                'worker ready', 30000);
  const api = (method, p, body) => request(method, base + p, body, TOKEN);
  const submit = async (body) => {
    const r = await api('POST', '/v1/jobs', body);
    assert.equal(r.status, 201, r.text);
    return r.json;
  };

  const args = ['--disable-dev-shm-usage', '--disable-gpu'];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  try {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 40[14]/.test(m.text())) problems.push('console: ' + m.text());
    });
    const shot = (name) => page.screenshot({ path: path.join(OUT, name + '.png'), fullPage: true });

    log('load /ui/ with auth on: the token form');
    const resp = await page.goto(base + '/ui/');
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()['content-security-policy'], /script-src 'self'/);
    await page.locator('#login').waitFor({ state: 'visible' });
    await shot('01-token');
    await page.fill('#token-input', 'wrong-token');
    await page.click('#login button[type=submit]');
    await page.locator('#banner', { hasText: 'not accepted' }).waitFor();
    await page.fill('#token-input', TOKEN);
    await page.click('#login button[type=submit]');
    await page.locator('#view[data-view=overview]').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('jobmill.token')), TOKEN);

    log('a submitted job appears by itself');
    const later = await submit({ queue: 'reports', type: 'echo', payload: { report: 'weekly' }, delay_s: 600 });
    const row = page.locator('#queues tr[data-queue=reports]');
    await row.waitFor({ timeout: 10000 });
    await waitFor(async () => (await row.locator('td[data-state=scheduled]').textContent()) === '1', 'scheduled count 1');
    await row.locator('td[data-state=scheduled] a').click();
    await page.locator('#view[data-view=queue]').waitFor();
    const jobRow = page.locator('#jobs tr[data-job-id="' + later.id + '"]');
    await jobRow.waitFor();
    await shot('02-queue');
    await jobRow.locator('a').first().click();
    await page.locator('#job-id', { hasText: later.id }).waitFor();
    assert.match(await page.locator('dd[data-field=payload]').textContent(), /"report": "weekly"/);
    assert.equal(await page.locator('#job-status').textContent(), 'scheduled');

    log('cancel from the job page');
    await page.click('#cancel');
    await page.locator('#job-status', { hasText: 'canceled' }).waitFor();
    assert.equal((await api('GET', '/v1/jobs/' + later.id)).json.status, 'canceled');

    log('an XSS payload and error render as inert text');
    const evil = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">';
    const xss = await submit({ queue: 'reports', type: 'echo', payload: { html: evil }, delay_s: 600 });
    const xfail = await submit({ queue: 'default', type: 'fail', payload: { message: evil, permanent: true } });
    await waitFor(async () => (await api('GET', '/v1/jobs/' + xfail.id)).json.status === 'failed', 'xss job failed');
    await page.goto(base + '/ui/#/job/' + xss.id);
    await page.locator('#job-id', { hasText: xss.id }).waitFor();
    assert.ok((await page.locator('dd[data-field=payload]').textContent()).includes(evil.replace(/"/g, '\\"')));
    await page.goto(base + '/ui/#/queue/default/failed');
    await page.locator('#jobs tr[data-job-id="' + xfail.id + '"]').waitFor();
    assert.equal(await page.locator('#jobs tr[data-job-id="' + xfail.id + '"] td.err').textContent(), evil);
    await page.goto(base + '/ui/#/job/' + xfail.id);
    await page.locator('#job-id', { hasText: xfail.id }).waitFor();
    assert.equal(await page.locator('dd[data-field=error] pre').textContent(), evil);
    assert.equal(await page.locator('#view img, #view script').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    await shot('03-xss-inert');

    log('pause a queue from the page, retry a failed job: it is queued again');
    const failed = await submit({ queue: 'default', type: 'fail', payload: { message: 'disk full', permanent: true } });
    await waitFor(async () => (await api('GET', '/v1/jobs/' + failed.id)).json.status === 'failed', 'job failed');
    await page.goto(base + '/ui/#/');
    const drow = page.locator('#queues tr[data-queue=default]');
    await drow.locator('.pause-btn', { hasText: 'Pause' }).click();
    await drow.locator('.pause-btn', { hasText: 'Resume' }).waitFor();
    await drow.locator('.paused').waitFor();
    const qs = (await api('GET', '/v1/queues')).json.queues;
    assert.equal(qs.find((q) => q.name === 'default').paused, true);
    await page.goto(base + '/ui/#/job/' + failed.id);
    await page.locator('#job-status', { hasText: 'failed' }).waitFor();
    assert.equal(await page.locator('dd[data-field=error] pre').textContent(), 'disk full');
    assert.equal(await page.locator('#cancel').isDisabled(), true);
    await page.click('#retry');
    await page.locator('#job-status', { hasText: 'queued' }).waitFor();
    assert.equal(await page.locator('dd[data-field=attempts]').textContent(), '0 of 3');
    const requeued = (await api('GET', '/v1/jobs/' + failed.id)).json;
    assert.equal(requeued.status, 'queued');
    assert.equal(await page.locator('#retry').isDisabled(), true);
    await shot('04-retried');

    log('resume from the queue page: the job runs again and the page follows it');
    await page.goto(base + '/ui/#/queue/default/queued');
    await page.locator('#jobs tr[data-job-id="' + failed.id + '"]').waitFor();
    await page.locator('h2 .pause-btn', { hasText: 'Resume' }).click();
    await page.locator('h2 .pause-btn', { hasText: 'Pause' }).waitFor();
    await page.goto(base + '/ui/#/job/' + failed.id);
    await page.locator('#job-status', { hasText: 'failed' }).waitFor({ timeout: 15000 });
    assert.match(await page.locator('dd[data-field=fence]').textContent(), /^\d+$/);
    assert.notEqual(await page.locator('dd[data-field=worker]').textContent(), '-');

    log('traffic for the screenshot: queues, running jobs, sparklines, workers');
    const batch = (queue, n, type, payload) => api('POST', '/v1/jobs/batch',
      { jobs: Array.from({ length: n }, () => ({ queue, type, payload })) });
    await page.goto(base + '/ui/#/');
    await api('POST', '/v1/queues/reports/pause');
    // steady traffic while the page takes its periodic reads (one every 2 s)
    let traffic = true;
    const pump = (async () => {
      for (let i = 0; traffic; i++) {
        assert.equal((await batch('emails', 8 + (i % 5) * 3, 'echo', { to: 'user@example.com' })).status, 201);
        if (i % 2 === 0) assert.equal((await batch('images', 3, 'sleep', { ms: 1200 })).status, 201);
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      await waitFor(async () => (await page.locator('#queues tr[data-queue=emails] .spark polyline').count()) === 1,
                    'a sparkline for emails');
      await waitFor(async () => (await page.locator('#queues tr[data-queue=images] td[data-state=running]').textContent()) !== '0',
                    'images running');
      await waitFor(async () => ((await page.locator('#queues tr[data-queue=emails] .spark polyline')
        .getAttribute('points')) || '').split(' ').length >= 8, 'eight reads in the emails sparkline', 40000);
      await waitFor(async () => (await page.locator('#queues tr[data-queue=emails] .rate').textContent()) !== '0.0/s',
                    'a throughput rate for emails');
      await page.setViewportSize({ width: 1360, height: 500 });
      await page.screenshot({ path: path.join(OUT, '05-overview.png') }); // docs/dashboard.png
      await page.setViewportSize({ width: 1360, height: 900 });
    } finally {
      traffic = false;
      await pump;
    }
    const wrow = page.locator('#workers tr[data-worker]');
    await wrow.first().waitFor();
    assert.equal(await wrow.count(), 1);
    assert.match(await wrow.first().locator('td').nth(4).textContent(), /^\d+ \/ 4$/);
    assert.match(await wrow.first().locator('td').nth(5).textContent(), /^\d+\.\d s ago$/);

    log('the schedules view: a schedule fires, pause and resume from the page');
    const sr = await api('POST', '/v1/schedules', { name: 'every-second', cron: '* * * * * *',
      tz: 'Europe/Berlin', job: { queue: 'ticks', type: 'echo', payload: { hi: 1 } } });
    assert.equal(sr.status, 201, sr.text);
    await page.goto(base + '/ui/#/schedules');
    const srow = page.locator('#schedules tr[data-schedule="every-second"]');
    await waitFor(async () => (await srow.locator('td a[href^="#/job/"]').count()) === 1,
                  'a last job on the schedule row');
    assert.equal(await srow.locator('td').nth(1).textContent(), '* * * * * *');
    assert.equal(await srow.locator('td').nth(2).textContent(), 'Europe/Berlin');
    await page.screenshot({ path: path.join(OUT, '06-schedules.png') });
    await srow.locator('button.sched-pause-btn').click();
    await waitFor(async () => (await srow.locator('.paused').count()) === 1, 'the schedule paused');
    assert.equal((await api('GET', '/v1/schedules')).json.schedules[0].paused, true);
    assert.equal(await srow.locator('td[data-field=next_run]').textContent(), '-');
    await srow.locator('button.sched-pause-btn', { hasText: 'Resume' }).click();
    await waitFor(async () => (await srow.locator('.paused').count()) === 0, 'the schedule resumed');
    assert.equal((await api('DELETE', '/v1/schedules/every-second')).status, 200);
    await page.goto(base + '/ui/#/');

    log('a queue\'s limits in the queues table');
    const lr = await api('PUT', '/v1/queues/emails/limits',
                         { rate: { n: 500, per_s: 2 }, concurrency: 8, types: { slow: { concurrency: 1 } } });
    assert.equal(lr.status, 200, lr.text);
    const lcell = page.locator('#queues tr[data-queue=emails] td[data-field=limits]');
    await waitFor(async () => /^500 per 2 s \(\d+ left\) \u00b7 \u2264 8 running \u00b7 slow \u2264 1$/
      .test(await lcell.textContent()), 'the limits of emails');
    assert.equal(await page.locator('#queues tr[data-queue=images] td[data-field=limits]').textContent(), '-');

    log('a hidden tab stops polling; a visible one resumes');
    let calls = 0;
    page.on('request', (r) => { if (r.url().includes('/v1/')) calls++; });
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await page.locator('#refresh-state', { hasText: 'paused (tab hidden)' }).waitFor();
    const before = calls;
    await page.waitForTimeout(4500); // an absence: watch more than two refresh periods
    assert.equal(calls, before, 'no API call while hidden');
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitFor(() => calls > before, 'polling again once visible', 5000);

    assert.deepEqual(problems, [], 'no script error and no CSP violation');
  } finally {
    await browser.close();
  }
  log('the services stop cleanly (exit 0, no sanitizer report)');
  for (const p of procs.filter((x) => x.name !== 'redis').reverse()) {
    const exited = new Promise((resolve) => p.once('exit', (code) => resolve(code)));
    p.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 30000))]);
    const text = fs.readFileSync(path.join(OUT, p.name + '.log'), 'utf8');
    assert.equal(code, 0, p.name + ' exited ' + code + ' on SIGTERM:\n' + text.slice(-3000));
    for (const mark of ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'])
      assert.ok(!text.includes(mark), 'sanitizer report in the ' + p.name + ' log:\n' + text.slice(-4000));
  }
  log('all dashboard checks passed; screenshots in ' + OUT);
}

function cleanup() {
  for (const p of procs.reverse()) if (p.exitCode === null) p.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().then(() => { cleanup(); }, (e) => {
  console.error('ui: FAILED: ' + (e && e.stack ? e.stack : e));
  cleanup();
  process.exitCode = 1;
});
process.on('SIGINT', () => { cleanup(); process.exit(130); });
process.on('SIGTERM', () => { cleanup(); process.exit(143); });
