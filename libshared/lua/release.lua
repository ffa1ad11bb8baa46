-- release: a draining worker hands a running job back, to the head of its
-- queue, and gives its attempt back. ARGV[4..] = id, fence. Guard: running
-- under this fence. Returns 1 released, 2 canceled instead (a cancel was
-- requested: the job must not run again), 0 refused.
local id, fence = ARGV[4], ARGV[5]
local jk = jkey(id)
local q = held(jk, fence)
if not q then return 0 end
if redis.call('HGET', jk, 'cancel') == '1' then
  terminal(id, q, 'running', 'canceled', now_ms())
  return 2
end
leave(id, q, 'running')
redis.call('HINCRBY', jk, 'attempts', -1)
redis.call('HSET', jk, 'status', 'queued')
redis.call('LPUSH', qkey(q, 'pending'), id)
count(q, 'queued', 1)
wake(q, 1)
return 1
