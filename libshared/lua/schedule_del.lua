-- schedule_del: remove a schedule. ARGV[4] = name. Returns 1, or 0 when
-- there was none. Jobs it enqueued are untouched.
local name = ARGV[4]
redis.call('ZREM', SP .. 'sched_due', name)
redis.call('ZREM', SP .. 'sched_all', name)
return redis.call('DEL', SP .. 'sched:' .. name)
