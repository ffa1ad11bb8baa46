-- schedule_due (read-only): the schedules whose next fire has come, by Redis
-- TIME. ARGV[4] = at most this many. Returns {now_ms, {field, value, ...}
-- per due schedule (its hash)}.
local now = now_ms()
local out = {now}
local names = redis.call('ZRANGEBYSCORE', SP .. 'sched_due', '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, name in ipairs(names) do
  local h = redis.call('HGETALL', SP .. 'sched:' .. name)
  if #h > 0 then out[#out + 1] = h end
end
return out
