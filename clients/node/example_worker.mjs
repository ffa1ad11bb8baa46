#!/usr/bin/env node
// example_worker.mjs - a jobmill worker in Node over HTTP, built-in fetch only
// (Node 18+); the protocol is docs/workers-http.md.
//
// It claims jobs (long-polling), runs each handler, renews every lease it
// holds every third of the lease, and commits the result (complete) or the
// error (fail; a PermanentError is not retried). A 409 lease_lost means the
// lease was lost and another worker owns the job now: nothing is committed.
// SIGTERM or SIGINT stops claiming, lets the jobs in flight finish, exits 0.
//
//   JOBMILL_URL=http://127.0.0.1:8080 JOBMILL_QUEUES=default \
//   JOBMILL_CONCURRENCY=4 node clients/node/example_worker.mjs
//
// Environment: JOBMILL_URL, JOBMILL_TOKEN (bearer token), JOBMILL_QUEUES
// (comma list, long-polled in turn when all are empty), JOBMILL_CONCURRENCY,
// JOBMILL_WORKER_ID, JOBMILL_LEASE_MS, JOBMILL_WAIT_S.
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

const env = process.env;
const url = (env.JOBMILL_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const queues = (env.JOBMILL_QUEUES || 'default').split(',').filter(Boolean);
const concurrency = Math.max(1, parseInt(env.JOBMILL_CONCURRENCY || '2', 10));
const leaseMs = env.JOBMILL_LEASE_MS ? parseInt(env.JOBMILL_LEASE_MS, 10) : undefined;
const waitS = parseFloat(env.JOBMILL_WAIT_S || '5');
const workerId = (env.JOBMILL_WORKER_ID ||
  `${os.hostname()}-${process.pid}-node`).replace(/[^A-Za-z0-9_.:@-]/g, '-').slice(0, 128);

class PermanentError extends Error {}
class LeaseLost extends Error {}

const log = (level, msg, fields = {}) =>
  process.stderr.write(JSON.stringify({ ts: Date.now() / 1000, level, msg, ...fields }) + '\n');

// ---- the handlers: job type -> async (job) => result ----
const handlers = {
  echo: async (job) => job.payload,
  wordcount: async (job) => ({ words: String(job.payload?.text ?? '').split(/\s+/).filter(Boolean).length }),
  sleep: async (job) => {
    const ms = job.payload?.ms;
    if (typeof ms !== 'number' || ms < 0 || ms > 604800000) {
      throw new PermanentError('sleep: payload must be {"ms": N} with 0 <= N <= 604800000');
    }
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (job.cancelRequested || job.lost) throw new Error('stopped: cancel requested or lease lost');
      await sleep(Math.min(50, end - Date.now()));
    }
    await job.log(`slept ${ms} ms`);
    await job.progress(100, 'slept');
    return null;
  },
};

// ---- the api ----
async function call(method, path, body, timeoutS = 30) {
  const headers = { 'Content-Type': 'application/json' };
  if (env.JOBMILL_TOKEN) headers.Authorization = `Bearer ${env.JOBMILL_TOKEN}`;
  const res = await fetch(url + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutS * 1000),
  });
  const out = await res.json().catch(() => null);
  if (res.status === 409 && out?.error?.code === 'lease_lost') throw new LeaseLost(out.error.message);
  if (!res.ok) throw new Error(`${res.status} ${out?.error?.code}: ${out?.error?.message}`);
  return out;
}

const held = new Map(); // id -> job
let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { stopping = true; });

function fenced(job, what, body) {
  return call('POST', `/v1/jobs/${encodeURIComponent(job.id)}/${what}`,
    { ...body, lease_token: job.lease_token });
}

async function heartbeat(job) {
  try {
    const out = await fenced(job, 'heartbeat', { worker: workerId, busy: held.size, lease_ms: leaseMs });
    if (out.cancel_requested) job.cancelRequested = true;
  } catch (e) {
    if (e instanceof LeaseLost) job.lost = true;
    log('warn', e instanceof LeaseLost ? 'lease lost' : 'heartbeat failed', { job_id: job.id, error: String(e) });
  }
}

async function runOne(job) {
  job.progress = (progress, message) => fenced(job, 'progress', { progress, message }).catch(() => {});
  // lines for the job's log (GET /v1/jobs/{id}/logs, ?follow=1 to stream them)
  job.log = (...lines) => fenced(job, 'logs', { lines: lines.map(String) }).catch(() => {});
  const timer = setInterval(() => heartbeat(job), Math.max(100, (job.lease_ms || 15000) / 3));
  let outcome;
  try {
    const fn = handlers[job.type];
    if (!fn) throw new PermanentError(`no handler for type "${job.type}"`);
    outcome = ['complete', { result: (await fn(job)) ?? null }];
  } catch (e) {
    const permanent = e instanceof PermanentError;
    outcome = ['fail', { error: permanent ? e.message : `${e.name}: ${e.message}`, retryable: !permanent }];
  } finally {
    clearInterval(timer);
  }
  try {
    const out = await fenced(job, ...outcome);
    log('info', `job ${outcome[0]}`, { job_id: job.id, status: out.status });
  } catch (e) {
    log('warn', e instanceof LeaseLost ? 'commit refused: lease lost' : 'commit failed',
      { job_id: job.id, http_status: e instanceof LeaseLost ? 409 : undefined, error: String(e) });
  } finally {
    held.delete(job.id);
  }
}

async function claim(queue, max, wait) {
  const body = { worker: workerId, max, wait_s: wait, host: os.hostname().slice(0, 128), pid: process.pid,
    concurrency, busy: held.size, queues: queues.slice(0, 16), lease_ms: leaseMs };
  return (await call('POST', `/v1/queues/${encodeURIComponent(queue)}/claim`, body, wait + 30)).jobs;
}

log('info', 'worker started', { worker: workerId, queues, concurrency });
let turn = 0;
let backoff = 100;
while (!stopping) {
  const free = concurrency - held.size;
  if (free <= 0) { await sleep(20); continue; }
  try {
    let jobs = [];
    for (const q of queues) if ((jobs = await claim(q, free, 0)).length) break;
    if (!jobs.length && !stopping) jobs = await claim(queues[turn++ % queues.length], free, waitS);
    for (const job of jobs) { held.set(job.id, job); runOne(job); }
    backoff = 100;
  } catch (e) {
    log('warn', 'claim failed; retrying', { error: String(e) });
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 5000);
  }
}
while (held.size) await sleep(50);
log('info', 'worker stopped', { worker: workerId });
