-- schedule_pause: ARGV[4..] = name, '1' pause / '0' resume, gen, next_ms.
-- Pausing takes the schedule out of sched_due: no tick fires while paused,
-- and none is caught up later. Resuming sets the next fire to next_ms (the
-- first fire after now, computed by the caller from the definition of
-- generation gen). Returns 1; 0 no such schedule; -2 the definition changed
-- since the caller read it (gen differs: read again).
local name, pause, gen, nxt = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local k = SP .. 'sched:' .. name
local cur = redis.call('HMGET', k, 'gen', 'paused')
if not cur[1] then return 0 end
if pause == '1' then
  redis.call('HSET', k, 'paused', '1')
  redis.call('ZREM', SP .. 'sched_due', name)
  return 1
end
if cur[2] ~= '1' then return 1 end -- running already: keep its next fire
if cur[1] ~= gen then return -2 end
redis.call('HSET', k, 'paused', '0', 'next', nxt)
redis.call('ZADD', SP .. 'sched_due', nxt, name)
return 1
