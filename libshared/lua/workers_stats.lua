-- workers_stats: the registry's liveness for the janitor's gauges. KEYS[1]
-- unused (global keys). A worker counts as live while its record exists
-- (its own TTL); the heartbeat age is Redis time since its last beat.
-- Looks at the 1000 stalest entries at most (the oldest beats first).
-- Returns {live, max heartbeat age in ms (0 when none is live)}.
local now = now_ms()
local zk = workers_key()
local total = redis.call('ZCARD', zk)
local old = redis.call('ZRANGE', zk, 0, 999, 'WITHSCORES')
local live, age, found = total, 0, false
for i = 1, #old, 2 do
  if redis.call('EXISTS', worker_key(old[i])) == 0 then
    live = live - 1
  elseif not found then
    age, found = now - tonumber(old[i + 1]), true
  end
end
if age < 0 then age = 0 end
return {live, age}
