-- fail: commit a failed attempt. ARGV[4..] = id, lease token, error, permanent
-- ('1'/'0'), backoff_ms (computed in C with jitter). Guard: running under
-- this lease token. Returns 0 refused, 1 scheduled for retry, 2 dead-lettered,
-- 3 canceled (a cancel was requested while it ran: never retried).
local id, token = ARGV[4], ARGV[5]
local jk = jkey(id)
local q = held(jk, token)
if not q then return 0 end
local now = now_ms()
local a = redis.call('HMGET', jk, 'attempts', 'max_attempts', 'cancel')
redis.call('HSET', jk, 'error', ARGV[6])
if a[3] == '1' then
  terminal(id, q, 'running', 'canceled', now)
  return 3
end
-- a malformed record (missing counters) is dead-lettered, never retried forever
if ARGV[7] == '1' or (tonumber(a[1]) or 0) >= (tonumber(a[2]) or 0) then
  terminal(id, q, 'running', 'failed', now)
  return 2
end
local run_at = now + tonumber(ARGV[8])
leave(id, q, 'running')
redis.call('HSET', jk, 'status', 'scheduled', 'run_at', run_at)
redis.call('ZADD', qkey(q, 'scheduled'), run_at, id)
count(q, 'scheduled', 1)
return 1
