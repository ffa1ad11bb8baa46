-- schedule_advance: after a janitor enqueued a schedule's due ticks (each
-- idempotent by schedule + tick), move its next fire on: a compare-and-set
-- on the generation and the next fire the janitor read, so of several
-- janitors handling the same ticks exactly one advances, and a redefined
-- schedule (new generation) is never advanced from its old definition.
-- ARGV[4..] = name, gen, expect_next, new_next, last_tick, last_job.
-- Returns 1 advanced, 0 someone else did (or the schedule changed or went).
local name, gen, expect, nxt, last, job = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local k = SP .. 'sched:' .. name
local cur = redis.call('HMGET', k, 'gen', 'next', 'paused')
if cur[1] ~= gen or cur[2] ~= expect then return 0 end
redis.call('HSET', k, 'next', nxt, 'last', last, 'last_job', job)
if cur[3] ~= '1' then redis.call('ZADD', SP .. 'sched_due', nxt, name) end
return 1
