// bullmq_worker.js - one BullMQ worker process for bench/run: a no-op
// processor on queue BENCH_QUEUE (default "bench") with concurrency BENCH_CONC. Runs until SIGTERM.
'use strict';
const { Worker } = require('bullmq');

const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port) };
const conc = Number(process.env.BENCH_CONC || 8);

const worker = new Worker(process.env.BENCH_QUEUE || 'bench', async () => null, { connection, concurrency: conc });
worker.on('error', (e) => console.error('worker error', e));
worker.waitUntilReady().then(() => console.error('bullmq worker ready'));

async function stop() {
  await worker.close(true).catch(() => {});
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
