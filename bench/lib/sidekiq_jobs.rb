# sidekiq_jobs.rb - the jobs of bench/run's Sidekiq runs (loaded by the sidekiq
# workers with -r, and by sidekiq_bench.rb for the class names).
#
# Sidekiq keeps no record of a finished job, so each worker process counts its
# own completions (first/last time, count) in memory and a background thread
# copies them to the hash bench:sk:<pid> every 10 ms: no per-job Redis write.
require 'sidekiq'

# redis-rb 4.8 prints a deprecation warning on every Sidekiq push/fetch (stderr
# writes that would slow both sides down)
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

Sidekiq.configure_server do |config|
  config.logger.level = Logger::WARN # jobmill logs nothing per job either
end

module BenchStats
  @lock = Mutex.new
  @first = nil
  @last = nil
  @count = 0
  @flushed = 0

  def self.hit
    t = Process.clock_gettime(Process::CLOCK_REALTIME)
    @lock.synchronize do
      @first ||= t
      @last = t
      @count += 1
    end
  end

  def self.flush
    first, last, count = @lock.synchronize { [@first, @last, @count] }
    return if count == @flushed
    Sidekiq.redis { |c| c.hset("bench:sk:#{Process.pid}", 'first', first, 'last', last, 'count', count) }
    @flushed = count
  end

  def self.start_flusher
    Thread.new do
      loop do
        sleep 0.01
        begin
          flush
        rescue StandardError => e
          warn "bench flush: #{e}"
        end
      end
    end
  end
end

Sidekiq.configure_server do |config|
  config.on(:startup) { BenchStats.start_flusher }
end

# The no-op job of the enqueue and processing measurements.
class NoopJob
  include Sidekiq::Worker
  def perform(*)
    BenchStats.hit
  end
end

# The latency job: marks its completion with SET key "submit,done" (the only
# way a Sidekiq client can learn that a job finished).
class LatJob
  include Sidekiq::Worker
  def perform(key, submitted)
    now = Process.clock_gettime(Process::CLOCK_REALTIME)
    Sidekiq.redis { |c| c.set(key, "#{submitted},#{now}", ex: 60) }
  end
end

# The paced latency job: a server middleware stamps when it starts, against
# the enqueued_at Sidekiq's client wrote into the job (float seconds), and
# RPUSHes the difference to bench:paced (one extra write per paced job only).
class PacedJob
  include Sidekiq::Worker
  def perform; end
end

class PacedStamp
  def call(worker, job, _queue)
    if worker.is_a?(PacedJob)
      d = Time.now.to_f - job['enqueued_at'].to_f
      Sidekiq.redis { |c| c.rpush('bench:paced', d.to_s) }
    end
    yield
  end
end

Sidekiq.configure_server do |config|
  config.server_middleware { |chain| chain.add PacedStamp }
end
