-- worker_beat: register or refresh a worker. KEYS[1] = the registry slot.
-- ARGV[4..] = id, host, pid, queues, concurrency, busy, ttl_ms.
local wk = worker_key(ARGV[4])
local now = now_ms()
if redis.call('HEXISTS', wk, 'started') == 0 then redis.call('HSET', wk, 'started', now) end
redis.call('HSET', wk, 'host', ARGV[5], 'pid', ARGV[6], 'queues', ARGV[7],
  'concurrency', ARGV[8], 'busy', ARGV[9])
redis.call('PEXPIRE', wk, tonumber(ARGV[10]))
redis.call('ZADD', workers_key(), now, ARGV[4])
return now
