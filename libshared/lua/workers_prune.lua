-- workers_prune: drop workers that fell silent by their own measure. A
-- worker's record expires after the TTL it sets on every beat (a few of its
-- own heartbeat periods), so a worker is silent exactly when its record is
-- gone; a janitor with a faster heartbeat never prunes a slower worker.
-- Candidates are workers whose last beat is older than ARGV[4] ms (the
-- smallest TTL any worker sets), at most 1000 per call. Returns the count.
local horizon = now_ms() - tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', workers_key(), '-inf', horizon, 'LIMIT', 0, 1000)
local n = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', worker_key(id)) == 0 then
    redis.call('ZREM', workers_key(), id)
    n = n + 1
  end
end
return n
