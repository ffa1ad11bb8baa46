// bullmq_bench.js - BullMQ's side of bench/run. Env: REDIS_URL, BENCH_LOGDIR
// and the BENCH_* sizes (see bench/lib/benchlib.py). Starts BENCH_PROCS worker
// processes (bullmq_worker.js); prints "RESULT {json}" as its last line.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const { Queue, QueueEvents, Job } = require('bullmq');
const IORedis = require('ioredis');

const envInt = (k, d) => (process.env[k] ? Number(process.env[k]) : d);
const N = envInt('BENCH_N', 20000);
const M = envInt('BENCH_M', 5000);
const LAT = envInt('BENCH_LAT', 200);
const WARM = envInt('BENCH_WARMUP', 10);
const PROCS = envInt('BENCH_PROCS', 2);
const CONC = envInt('BENCH_CONC', 8);
const CLIENTS = envInt('BENCH_CLIENTS', 4);
const BULK = envInt('BENCH_BULK', 1000);
const PROCESS_TIMEOUT = envInt('BENCH_PROCESS_TIMEOUT', 90);
const EWD_BATCH = envInt('BENCH_EWD_BATCH', 100);
const PACED_RATE = envInt('BENCH_PACED_RATE', 500);
const PACED_N = envInt('BENCH_PACED_N', 1000);
// worker set-ups tried for throughput: processes x concurrency
const CONFIGS = (process.env.BENCH_BULLMQ_CONFIGS || '1x50 2x8 4x16').split(/\s+/).filter(Boolean)
  .map((c) => { const [p, k] = c.split('x').map(Number); return { name: c, procs: p, conc: k }; });
const MAIN = `${PROCS}x${CONC}`;
const LOGDIR = process.env.BENCH_LOGDIR || '/tmp';
const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port) };

const log = (...a) => console.error('  [bullmq_bench.js]', ...a);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const version = (pkg) =>
  JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules', pkg, 'package.json'))).version;
const pct = (s, p) => s[Math.max(0, Math.min(s.length - 1, Math.ceil((p * s.length) / 100) - 1))];
const rate = (jobs, seconds, how, extra = {}) => ({ jobs, seconds, rate: jobs / seconds, how, ...extra });
const children = [];

async function enqueueSingle() {
  const q = new Queue('bench-single', { connection });
  await q.waitUntilReady();
  const per = Array.from({ length: CLIENTS }, (_, i) => Math.floor(M / CLIENTS) + (i < M % CLIENTS ? 1 : 0));
  const t0 = now();
  await Promise.all(per.map(async (n) => { for (let i = 0; i < n; i++) await q.add('noop', {}); }));
  const dt = now() - t0;
  await q.close();
  return rate(M, dt, `Queue.add awaited one at a time in ${CLIENTS} concurrent async loops, one process, one Queue`, { clients: CLIENTS });
}

async function enqueueBulk(q) {
  const t0 = now();
  for (let done = 0; done < N;) {
    const n = Math.min(BULK, N - done);
    await q.addBulk(Array.from({ length: n }, () => ({ name: 'noop', data: {} })));
    done += n;
  }
  return rate(N, now() - t0, `Queue.addBulk with ${BULK} jobs per call, 1 client, sequential`, { per_call: BULK });
}

function startWorkers(cfg, queue) {
  const out = [];
  for (let i = 0; i < cfg.procs; i++) {
    const f = fs.openSync(path.join(LOGDIR, `bullmq-worker-${cfg.name}-${i}.log`), 'a');
    const c = spawn(process.execPath, [path.join(__dirname, 'bullmq_worker.js')],
      { stdio: ['ignore', f, f], env: { ...process.env, BENCH_CONC: String(cfg.conc), BENCH_QUEUE: queue } });
    children.push(c);
    out.push(c);
  }
  return out;
}

// utime + stime (s) of live processes, from /proc/PID/stat
function procCpu(procs) {
  const tck = 100; // USER_HZ; Linux reports /proc times in 1/100 s
  let tot = 0;
  for (const c of procs) {
    try {
      const f = fs.readFileSync(`/proc/${c.pid}/stat`, 'utf8').split(')').pop().trim().split(/\s+/);
      tot += (Number(f[11]) + Number(f[12])) / tck;
    } catch (e) { /* gone */ }
  }
  return tot;
}

// Redis CPU (s), total commands and used_memory from one INFO
async function counters(redis) {
  const d = {};
  for (const line of (await redis.info()).split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) d[line.slice(0, i)] = line.slice(i + 1);
  }
  return { cpu_s: Number(d.used_cpu_user) + Number(d.used_cpu_sys),
    commands: Number(d.total_commands_processed), used_memory: Number(d.used_memory) };
}

async function waitCount(redis, key, n, timeoutS, pollMs = 50) {
  const t0 = now();
  while (now() - t0 < timeoutS) {
    if ((await redis.zcard(key)) >= n) return true;
    await sleep(pollMs);
  }
  return false;
}

async function lastScore(redis, key) {
  return Number((await redis.zrange(key, -1, -1, 'WITHSCORES'))[1]);
}

// One worker set-up: bulk enqueue N (no workers: memory per waiting job), the
// drain of that backlog, then N more submitted while the workers run.
async function runConfig(cfg, redis, keepWorkers) {
  const qname = `bench-${cfg.name}`;
  const q = new Queue(qname, { connection });
  await q.waitUntilReady();
  const key = `bull:${qname}:completed`;
  const out = { setup: `${cfg.procs} node processes x Worker concurrency ${cfg.conc}` };
  const c0 = await counters(redis);
  out.enqueue_bulk = await enqueueBulk(q);
  const c1 = await counters(redis);
  const t0 = now();
  const workers = startWorkers(cfg, qname);
  let done = await waitCount(redis, key, N, PROCESS_TIMEOUT);
  const wall = now() - t0;
  const c2 = await counters(redis);
  const wcpu = procCpu(workers);
  let count = await redis.zcard(key);
  if (count === 0) return { error: `no job finished within ${PROCESS_TIMEOUT}s` };
  const first = Number((await redis.zrange(key, 0, 0, 'WITHSCORES'))[1]);
  const last = await lastScore(redis, key);
  out.process = rate(count, (last - first) / 1000, `jobs queued before the workers start; first to last score (finishedOn, ms) of ${key}; ${cfg.procs} worker processes x concurrency ${cfg.conc}, async no-op processor`,
    { wall_s: wall, complete: done, redis_cpu_us_per_job: ((c2.cpu_s - c1.cpu_s) * 1e6) / count,
      worker_cpu_us_per_job_incl_startup: (wcpu * 1e6) / count });
  out.lifecycle = { jobs: N, redis_cpu_us_per_job: ((c2.cpu_s - c0.cpu_s) * 1e6) / N,
    redis_commands_per_job: (c2.commands - c0.commands) / N,
    redis_memory_bytes_per_waiting_job: (c1.used_memory - c0.used_memory) / N,
    how: 'INFO cpu / total_commands_processed over addBulk and the drain (workers\' fetch, complete, lock renewals, stalled checks), divided by N; used_memory after addBulk minus before, divided by N' };
  // enqueue while draining: the workers run, idle; one producer adds N more
  await sleep(200);
  const e0 = await counters(redis);
  const w0 = procCpu(workers);
  const tStart = Date.now();
  const p0 = now();
  for (let sent = 0; sent < N;) {
    const n = Math.min(EWD_BATCH, N - sent);
    await q.addBulk(Array.from({ length: n }, () => ({ name: 'noop', data: {} })));
    sent += n;
  }
  const tProd = now() - p0;
  done = await waitCount(redis, key, 2 * N, PROCESS_TIMEOUT, 20);
  const e1 = await counters(redis);
  const w1 = procCpu(workers);
  count = (await redis.zcard(key)) - N;
  out.enqueue_while_draining = rate(count, ((await lastScore(redis, key)) - tStart) / 1000,
    `workers already running and idle; 1 producer awaits Queue.addBulk of ${EWD_BATCH} jobs at a time, as fast as it can; rate = jobs / (first submit to last finishedOn)`,
    { complete: done, producer_rate: N / tProd, worker_cpu_us_per_job: ((w1 - w0) * 1e6) / count,
      worker_cpu_how: `utime+stime of the ${cfg.procs} node worker processes (/proc/PID/stat) over this phase / jobs`,
      redis_cpu_us_per_job: ((e1.cpu_s - e0.cpu_s) * 1e6) / count,
      redis_commands_per_job: (e1.commands - e0.commands) / count });
  if (!keepWorkers) {
    await stopChildren(workers);
    await q.close();
    return out;
  }
  out.queue = q;
  out.workers = workers;
  return out;
}

// Idle workers; PACED_N adds at PACED_RATE/s; submit-to-start = processedOn - timestamp (ms)
async function pacedLatency(q, redis) {
  const period = 1000 / PACED_RATE;
  const ids = [];
  const t0 = performance.now();
  for (let i = 0; i < PACED_N; i++) {
    const d = t0 + i * period - performance.now();
    if (d > 0) await sleep(d);
    ids.push((await q.add('noop', {})).id);
  }
  const achieved = PACED_N / ((performance.now() - t0) / 1000);
  const key = `bull:${q.name}:`;
  const deadline = now() + 30;
  let rows = [];
  while (now() < deadline) {
    const p = redis.pipeline();
    for (const id of ids) p.hmget(key + id, 'timestamp', 'processedOn');
    rows = (await p.exec()).map(([, v]) => v);
    if (rows.every((v) => v[1])) break;
    await sleep(50);
  }
  const d = rows.filter((v) => v[1]).map((v) => Number(v[1]) - Number(v[0])).sort((a, b) => a - b);
  if (!d.length) return { error: 'no paced job started' };
  return { samples: d.length, p50_ms: pct(d, 50), p95_ms: pct(d, 95), p99_ms: pct(d, 99), max_ms: d[d.length - 1],
    mean_ms: d.reduce((a, b) => a + b, 0) / d.length, rate: achieved, resolution_ms: 1,
    how: `${d.length} Queue.add at ${PACED_RATE}/s, awaited one at a time; processedOn - timestamp of each job hash (both ms, set by BullMQ: resolution 1 ms)` };
}

async function latency(q) {
  const qe = new QueueEvents(q.name, { connection });
  await qe.waitUntilReady();
  await sleep(200); // let QueueEvents' XREAD BLOCK start
  const client = [], server = [];
  for (let i = 0; i < WARM + LAT; i++) {
    const t0 = now();
    const job = await q.add('noop', {});
    await job.waitUntilFinished(qe, 5000);
    const dt = (now() - t0) * 1000;
    if (i >= WARM) {
      client.push(dt);
      const j = await Job.fromId(q, job.id);
      server.push(j.finishedOn - j.timestamp);
    }
  }
  await qe.close();
  const s = [...client].sort((a, b) => a - b);
  const sv = [...server].sort((a, b) => a - b);
  return {
    samples: s.length, p50_ms: pct(s, 50), p95_ms: pct(s, 95), p99_ms: pct(s, 99),
    mean_ms: s.reduce((a, b) => a + b, 0) / s.length, max_ms: s[s.length - 1],
    how: `Queue.add, then job.waitUntilFinished(QueueEvents) (XREAD BLOCK on the events stream); client wall time; ${WARM} warm-up jobs not counted`,
    server_p50_ms: sv[Math.floor(sv.length / 2)], server_how: 'finishedOn - timestamp of the job (ms)',
  };
}

async function stopChildren(list = children) {
  for (const c of list) if (c.exitCode === null) c.kill('SIGTERM');
  const deadline = Date.now() + 10000;
  for (const c of list) {
    while (c.exitCode === null && c.signalCode === null && Date.now() < deadline) await sleep(20);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

async function main() {
  const res = {
    system: 'bullmq', version: version('bullmq'), client: `ioredis ${version('ioredis')}, node ${process.version}`,
    setup: `${PROCS} node processes x Worker concurrency ${CONC} (throughput also with ${CONFIGS.map((c) => c.name).join(', ')})`,
    notes: ['removeOnComplete left at its default (keep every completed job), like jobmill keeping results'],
  };
  const redis = new IORedis(connection);
  try {
    log('warm-up (untimed)');
    const warm = new Queue('bench-warm', { connection });
    for (let i = 0; i < 200; i++) await warm.add('noop', {});
    await warm.addBulk(Array.from({ length: BULK }, () => ({ name: 'noop', data: {} })));
    await warm.close();
    log('single enqueue', M);
    res.enqueue_single = await enqueueSingle();
    res.configs = {};
    const main = CONFIGS.find((c) => c.name === MAIN) || CONFIGS[0];
    let kept = null;
    for (const cfg of CONFIGS) {
      log('config', cfg.name, ': bulk enqueue, drain, enqueue while draining', N);
      const r = await runConfig(cfg, redis, cfg === main);
      if (r.queue) { kept = r; delete r.queue; delete r.workers; }
      res.configs[cfg.name] = r;
    }
    const m = res.configs[main.name];
    res.main_config = main.name;
    res.enqueue_bulk = m.enqueue_bulk;
    res.process = m.process;
    res.lifecycle = m.lifecycle;
    res.enqueue_while_draining = m.enqueue_while_draining;
    if (kept) {
      const q = new Queue(`bench-${main.name}`, { connection });
      await q.waitUntilReady();
      log('paced latency', PACED_N, 'at', PACED_RATE, '/s with', main.name);
      res.paced_latency = await pacedLatency(q, redis);
      log('latency', LAT, 'with', main.name);
      res.latency = await latency(q);
      await q.close();
    }
  } catch (e) {
    res.error = String(e && e.stack || e);
  } finally {
    await stopChildren();
    redis.disconnect();
  }
  console.log('RESULT ' + JSON.stringify(res));
  process.exit(0);
}
process.on('SIGTERM', async () => { await stopChildren(); process.exit(1); });
main();
