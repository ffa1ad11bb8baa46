-- worker_touch: refresh a registered worker's beat and record TTL without
-- rewriting its fields (an HTTP worker's job heartbeat). KEYS[1] unused
-- (global keys). ARGV[4..] = id, ttl_ms, busy ('' = keep). Returns 1
-- refreshed, 0 not registered (nothing written).
local wk = worker_key(ARGV[4])
if redis.call('EXISTS', wk) == 0 then return 0 end
if ARGV[6] ~= '' then redis.call('HSET', wk, 'busy', ARGV[6]) end
redis.call('PEXPIRE', wk, tonumber(ARGV[5]))
redis.call('ZADD', workers_key(), now_ms(), ARGV[4])
return 1
