-- schedule_due (read-only): the schedules whose next fire has come, by Redis
-- TIME. ARGV[4] = at most this many. Returns {now_ms, the next fire of the
-- first schedule not due yet ('' when none), {field, value, ...} per due
-- schedule (its hash)}.
local now = now_ms()
local due = SP .. 'sched_due'
local later = redis.call('ZRANGEBYSCORE', due, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local out = {now, later[2] or ''}
local names = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, name in ipairs(names) do
  local h = redis.call('HGETALL', SP .. 'sched:' .. name)
  if #h > 0 then out[#out + 1] = h end
end
return out
