#!/usr/bin/env ruby
# sidekiq_bench.rb - Sidekiq's side of bench/run (Debian's ruby-sidekiq).
# Env: REDIS_URL (Sidekiq reads it itself), BENCH_LOGDIR and the BENCH_* sizes
# of bench/lib/benchlib.py. Starts BENCH_PROCS `sidekiq` processes; prints
# "RESULT {json}" as its last line.
require 'json'
require_relative 'sidekiq_jobs'

def env_int(k, d) = (ENV[k] ? Integer(ENV[k]) : d)
N = env_int('BENCH_N', 20_000)
M = env_int('BENCH_M', 5000)
LAT = env_int('BENCH_LAT', 200)
WARM = env_int('BENCH_WARMUP', 10)
PROCS = env_int('BENCH_PROCS', 2)
CONC = env_int('BENCH_CONC', 8)
CLIENTS = env_int('BENCH_CLIENTS', 4)
BULK = env_int('BENCH_BULK', 1000)
PROCESS_TIMEOUT = env_int('BENCH_PROCESS_TIMEOUT', 90)
EWD_BATCH = env_int('BENCH_EWD_BATCH', 100)
PACED_RATE = env_int('BENCH_PACED_RATE', 500)
PACED_N = env_int('BENCH_PACED_N', 1000)
LOGDIR = ENV['BENCH_LOGDIR'] || '/tmp'
$children = []

def log(*a) = warn("  [sidekiq_bench.rb] #{a.join(' ')}")
def mono = Process.clock_gettime(Process::CLOCK_MONOTONIC)
def rate(jobs, secs, how, extra = {}) = { jobs: jobs, seconds: secs, rate: jobs / secs, how: how }.merge(extra)
def pct(s, p) = s[[[(p * s.length / 100.0).ceil - 1, 0].max, s.length - 1].min]

def enqueue_single
  per = Array.new(CLIENTS) { |i| M / CLIENTS + (i < M % CLIENTS ? 1 : 0) }
  t0 = mono
  per.map { |n| Thread.new { n.times { NoopJob.set(queue: 'bench-single').perform_async } } }.each(&:join)
  rate(M, mono - t0, "NoopJob.perform_async, #{CLIENTS} threads in one process (Sidekiq's client connection pool)",
       clients: CLIENTS)
end

def enqueue_bulk
  t0 = mono
  done = 0
  while done < N
    n = [BULK, N - done].min
    Sidekiq::Client.push_bulk('class' => NoopJob, 'queue' => 'bench', 'args' => Array.new(n) { [] })
    done += n
  end
  rate(N, mono - t0, "Sidekiq::Client.push_bulk with #{BULK} jobs per call, 1 client, sequential", per_call: BULK)
end

def start_workers
  req = File.join(__dir__, 'sidekiq_jobs.rb')
  PROCS.times do |i|
    out = File.join(LOGDIR, "sidekiq-#{i}.log")
    $children << Process.spawn('sidekiq', '-r', req, '-c', CONC.to_s, '-q', 'bench', '-t', '5',
                               out: [out, 'a'], err: [out, 'a'])
  end
end

def stats
  Sidekiq.redis do |c|
    c.keys('bench:sk:*').map { |k| c.hgetall(k) }
  end
end

def redis_cpu
  i = Sidekiq.redis { |c| c.info('cpu') }
  i['used_cpu_user'].to_f + i['used_cpu_sys'].to_f
end

# Redis CPU (s), total commands, used_memory from one INFO
def counters
  i = Sidekiq.redis(&:info)
  { cpu_s: i['used_cpu_user'].to_f + i['used_cpu_sys'].to_f, commands: i['total_commands_processed'].to_i,
    used_memory: i['used_memory'].to_i }
end

# utime + stime (s) of the worker processes, from /proc/PID/stat
def workers_cpu
  $children.sum do |pid|
    f = File.read("/proc/#{pid}/stat").rpartition(')').last.split
    (f[11].to_i + f[12].to_i) / 100.0 # USER_HZ
  rescue StandardError
    0.0
  end
end

def completed = stats.sum { |h| h['count'].to_i }

def wait_count(n, poll)
  t0 = mono
  while mono - t0 < PROCESS_TIMEOUT
    return true if completed >= n

    sleep poll
  end
  false
end

def enqueue_while_draining
  base = completed
  c0 = counters
  w0 = workers_cpu
  t_start = Process.clock_gettime(Process::CLOCK_REALTIME)
  t0 = mono
  sent = 0
  while sent < N
    n = [EWD_BATCH, N - sent].min
    Sidekiq::Client.push_bulk('class' => NoopJob, 'queue' => 'bench', 'args' => Array.new(n) { [] })
    sent += n
  end
  t_prod = mono - t0
  done = wait_count(base + N, 0.02)
  sleep 0.03 # the workers copy their counters to Redis every 10 ms
  c1 = counters
  w1 = workers_cpu
  count = completed - base
  last = stats.map { |h| h['last'].to_f }.max
  rate(count, last - t_start, "workers already running and idle; 1 producer calls push_bulk with #{EWD_BATCH} jobs " \
                              'at a time, as fast as it can; rate = jobs / (first submit to last completion)',
       complete: done, producer_rate: N / t_prod, worker_cpu_us_per_job: (w1 - w0) * 1e6 / count,
       worker_cpu_how: "utime+stime of the #{PROCS} sidekiq processes (/proc/PID/stat) over this phase / jobs",
       redis_cpu_us_per_job: (c1[:cpu_s] - c0[:cpu_s]) * 1e6 / count,
       redis_commands_per_job: (c1[:commands] - c0[:commands]).to_f / count)
end

def paced_latency
  Sidekiq.redis { |c| c.del('bench:paced') }
  period = 1.0 / PACED_RATE
  t0 = mono
  PACED_N.times do |i|
    d = t0 + i * period - mono
    sleep d if d.positive?
    PacedJob.set(queue: 'bench').perform_async
  end
  achieved = PACED_N / (mono - t0)
  deadline = mono + 30
  sleep 0.01 while Sidekiq.redis { |c| c.llen('bench:paced') } < PACED_N && mono < deadline
  d = Sidekiq.redis { |c| c.lrange('bench:paced', 0, -1) }.map { |x| x.to_f * 1000 }.sort
  return { error: 'no paced job started' } if d.empty?

  { samples: d.length, p50_ms: pct(d, 50), p95_ms: pct(d, 95), p99_ms: pct(d, 99), max_ms: d[-1], mean_ms: d.sum / d.length, rate: achieved,
    resolution_ms: 0.001,
    how: "#{d.length} perform_async at #{PACED_RATE}/s from one thread; start of the job (a server middleware) - " \
         "enqueued_at (float seconds written by Sidekiq's client just before its LPUSH)" }
end

def processing
  c0 = counters
  t0 = mono
  start_workers
  done = false
  while mono - t0 < PROCESS_TIMEOUT
    if stats.sum { |h| h['count'].to_i } >= N
      done = true
      break
    end
    sleep 0.05
  end
  wall = mono - t0
  sleep 0.03 # the workers copy their counters to Redis every 10 ms
  $after_drain = counters
  cpu = $after_drain[:cpu_s] - c0[:cpu_s]
  wcpu = workers_cpu
  st = stats
  count = st.sum { |h| h['count'].to_i }
  return { error: "no job finished within #{PROCESS_TIMEOUT}s" } if count.zero?

  span = st.map { |h| h['last'].to_f }.max - st.map { |h| h['first'].to_f }.min
  out = rate(count, span, "jobs queued before the workers start; first to last completion as counted in each " \
                          "worker process (end of perform, microseconds; Sidekiq stores no job record); " \
                          "#{PROCS} sidekiq processes -c #{CONC}", wall_s: wall, complete: done,
                                                                    redis_cpu_us_per_job: cpu * 1e6 / count,
                                                                    worker_cpu_us_per_job_incl_startup: wcpu * 1e6 / count)
  out[:note] = "only #{count} of #{N} finished within #{PROCESS_TIMEOUT}s" unless done
  out
end

def latency
  client = []
  server = []
  (WARM + LAT).times do |i|
    key = "bench:lat:#{i}"
    t0 = mono
    LatJob.set(queue: 'bench').perform_async(key, Process.clock_gettime(Process::CLOCK_REALTIME))
    v = nil
    deadline = mono + 5
    while mono < deadline
      v = Sidekiq.redis { |c| c.get(key) }
      break if v

      sleep 0.001
    end
    dt = (mono - t0) * 1000
    return { error: "latency job #{i} not done after 5 s" } unless v

    next if i < WARM

    client << dt
    sub, fin = v.split(',').map(&:to_f)
    server << (fin - sub) * 1000
  end
  s = client.sort
  sv = server.sort
  { samples: s.length, p50_ms: pct(s, 50), p95_ms: pct(s, 95), p99_ms: pct(s, 99),
    mean_ms: s.sum / s.length, max_ms: s[-1],
    how: 'perform_async of a job that SETs a key when done, then GET of that key polled every 1 ms ' \
         "(Sidekiq has no result or completion API); client wall time; #{WARM} warm-up jobs not counted",
    server_p50_ms: sv[sv.length / 2], server_how: 'job end - client submit time (both clocks on this host)' }
end

def stop_children
  $children.each { |pid| Process.kill('TERM', pid) rescue nil }
  deadline = mono + 10
  $children.each do |pid|
    loop do
      break if Process.waitpid(pid, Process::WNOHANG)
      if mono > deadline
        Process.kill('KILL', pid) rescue nil
        Process.waitpid(pid) rescue nil
        break
      end
      sleep 0.02
    end
  rescue Errno::ECHILD
    nil
  end
end

res = { system: 'sidekiq', version: Sidekiq::VERSION, client: "redis-rb #{Redis::VERSION}, ruby #{RUBY_VERSION}",
        setup: "#{PROCS} sidekiq processes x -c #{CONC} (threads; Ruby's GVL lets one run Ruby code at a time per process)",
        notes: ['Sidekiq OSS BasicFetch (BRPOP): a job leaves Redis when fetched, no lease, no result stored',
                'logger level WARN in the workers (jobmill logs nothing per job)'] }
begin
  log 'warm-up (untimed)'
  200.times { NoopJob.set(queue: 'bench-warm').perform_async }
  Sidekiq::Client.push_bulk('class' => NoopJob, 'queue' => 'bench-warm', 'args' => Array.new(BULK) { [] })
  log "single enqueue #{M}"
  res[:enqueue_single] = enqueue_single
  log "bulk enqueue #{N}"
  c0 = counters
  res[:enqueue_bulk] = enqueue_bulk
  c1 = counters
  log "processing #{N}"
  res[:process] = processing
  c2 = $after_drain
  res[:lifecycle] = { jobs: N, redis_cpu_us_per_job: (c2[:cpu_s] - c0[:cpu_s]) * 1e6 / N,
                      redis_commands_per_job: (c2[:commands] - c0[:commands]).to_f / N,
                      redis_memory_bytes_per_waiting_job: (c1[:used_memory] - c0[:used_memory]).to_f / N,
                      how: 'INFO cpu / total_commands_processed over push_bulk and the drain (BRPOP fetch; the ' \
                           "bench's own counter copy every 10 ms per process included), divided by N; used_memory " \
                           'after push_bulk minus before, divided by N' }
  log "enqueue while draining #{N}"
  res[:enqueue_while_draining] = enqueue_while_draining
  log "paced latency #{PACED_N} at #{PACED_RATE}/s"
  res[:paced_latency] = paced_latency
  log "latency #{LAT}"
  res[:latency] = latency
rescue StandardError => e
  res[:error] = "#{e.class}: #{e.message}"
ensure
  stop_children
end
puts "RESULT #{JSON.generate(res)}"
