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

function startWorkers() {
  for (let i = 0; i < PROCS; i++) {
    const out = fs.openSync(path.join(LOGDIR, `bullmq-worker-${i}.log`), 'a');
    children.push(spawn(process.execPath, [path.join(__dirname, 'bullmq_worker.js')],
      { stdio: ['ignore', out, out], env: { ...process.env, BENCH_CONC: String(CONC) } }));
  }
}

async function redisCpu(redis) {
  const info = await redis.info('cpu');
  let tot = 0;
  for (const line of info.split(/\r?\n/)) {
    if (line.startsWith('used_cpu_user:') || line.startsWith('used_cpu_sys:')) tot += Number(line.split(':')[1]);
  }
  return tot;
}

async function processing(q, redis) {
  const cpu0 = await redisCpu(redis);
  const t0 = now();
  startWorkers();
  const key = 'bull:bench:completed';
  let done = false;
  while (now() - t0 < PROCESS_TIMEOUT) {
    if ((await redis.zcard(key)) >= N) { done = true; break; }
    await sleep(50);
  }
  const wall = now() - t0;
  const cpu = (await redisCpu(redis)) - cpu0;
  const count = await redis.zcard(key);
  if (count === 0) return { error: `no job finished within ${PROCESS_TIMEOUT}s` };
  const first = Number((await redis.zrange(key, 0, 0, 'WITHSCORES'))[1]);
  const last = Number((await redis.zrange(key, -1, -1, 'WITHSCORES'))[1]);
  const out = rate(count, (last - first) / 1000, `jobs queued before the workers start; first to last score (finishedOn, ms) of ${key}; ${PROCS} worker processes x concurrency ${CONC}, async no-op processor`, { wall_s: wall, complete: done, redis_cpu_us_per_job: (cpu * 1e6) / count });
  if (!done) out.note = `only ${count} of ${N} finished within ${PROCESS_TIMEOUT}s`;
  return out;
}

async function latency(q) {
  const qe = new QueueEvents('bench', { connection });
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

async function stopChildren() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  const deadline = Date.now() + 10000;
  for (const c of children) {
    while (c.exitCode === null && c.signalCode === null && Date.now() < deadline) await sleep(20);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

async function main() {
  const res = {
    system: 'bullmq', version: version('bullmq'), client: `ioredis ${version('ioredis')}, node ${process.version}`,
    setup: `${PROCS} node processes x Worker concurrency ${CONC}`,
    notes: ['removeOnComplete left at its default (keep every completed job), like jobmill keeping results'],
  };
  const redis = new IORedis(connection);
  const q = new Queue('bench', { connection });
  try {
    await q.waitUntilReady();
    log('warm-up (untimed)');
    const warm = new Queue('bench-warm', { connection });
    for (let i = 0; i < 200; i++) await warm.add('noop', {});
    await warm.addBulk(Array.from({ length: BULK }, () => ({ name: 'noop', data: {} })));
    await warm.close();
    log('single enqueue', M);
    res.enqueue_single = await enqueueSingle();
    log('bulk enqueue', N);
    res.enqueue_bulk = await enqueueBulk(q);
    log('processing', N);
    res.process = await processing(q, redis);
    log('latency', LAT);
    res.latency = await latency(q);
  } catch (e) {
    res.error = String(e && e.stack || e);
  } finally {
    await stopChildren();
    await q.close().catch(() => {});
    redis.disconnect();
  }
  console.log('RESULT ' + JSON.stringify(res));
  process.exit(0);
}
process.on('SIGTERM', async () => { await stopChildren(); process.exit(1); });
main();
