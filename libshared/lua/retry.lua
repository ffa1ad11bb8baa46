-- retry (operator): failed/canceled/expired -> queued, attempts reset, the
-- record, its idempotency key and its log list made persistent again.
-- ARGV[4] = id. A member of a batch that still runs is counted out of the
-- batch's finished jobs again (_lib.lua batch_member_reopen); a done batch
-- stays done (docs/batches.md). Returns 1 done, 0 refused (state), -1 no record.
local id = ARGV[4]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 'status', 'queue', 'idem', 'priority', 'ext')
local e = ext_fields(jk, f[5])
f[5], f[6] = e[1], e[2]
if not f[1] then return -1 end
if not (f[1] == 'failed' or f[1] == 'canceled' or f[1] == 'expired') then return 0 end
local q = f[2]
leave(id, q, f[1])
if f[5] then batch_member_reopen(f[5], f[1]) end
redis.call('PERSIST', jk)
if f[3] then redis.call('PERSIST', idem_key(q, f[3])) end
if f[6] then redis.call('PERSIST', logs_key(id)) end
redis.call('HSET', jk, 'status', 'queued', 'attempts', 0, 'cancel', 0, 'run_at', now_ms())
redis.call('HDEL', jk, 'finished', 'result', 'error', 'started', 'expires_at')
ready(q, id, f[4], false)
count(q, 'queued', 1)
wake(q, 1)
return 1
