-- schedule_put: create or replace a cron schedule (docs/schedules.md). Every
-- schedule key lives in the one slot "<prefix>:{schedules}:" (KEYS[1]):
-- sched:<name> HASH the definition and its state, sched_due ZSET name ->
-- next fire (ms, unpaused schedules only), sched_all ZSET name -> 0 (the
-- listing, by name).
-- ARGV[4..] = name, cron, tz, job (submit body JSON), missed, catch_up_max,
-- source ('api' or 'yaml'), next_ms (the first fire after now, computed by
-- the caller from Redis TIME).
-- Returns 1 created, 2 replaced (a new generation: next_ms replaces the next
-- fire, the last run is kept), 0 unchanged (same definition: nothing is
-- written, the next fire stays), -1 refused (an 'api' write to a schedule
-- the janitor's YAML defines).
local name, cron, tz, job, missed, cmax, source, nxt =
  ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local k = SP .. 'sched:' .. name
local cur = redis.call('HMGET', k, 'cron', 'tz', 'job', 'missed', 'catch_up_max', 'source', 'paused')
if cur[6] == 'yaml' and source ~= 'yaml' then return -1 end
if cur[1] == cron and cur[2] == tz and cur[3] == job and cur[4] == missed and cur[5] == cmax
  and cur[6] == source then
  return 0
end
local now = now_ms()
local created = cur[1] == false
redis.call('HINCRBY', k, 'gen', 1)
redis.call('HSET', k, 'name', name, 'cron', cron, 'tz', tz, 'job', job, 'missed', missed,
  'catch_up_max', cmax, 'source', source, 'next', nxt, 'updated', int(now))
if created then redis.call('HSET', k, 'created', int(now), 'paused', '0') end
if cur[7] ~= '1' then redis.call('ZADD', SP .. 'sched_due', nxt, name) end
redis.call('ZADD', SP .. 'sched_all', 0, name)
if created then return 1 end
return 2
