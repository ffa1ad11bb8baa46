-- complete: commit success. ARGV[4..] = id, fence, result (JSON text).
-- Guard: running under this fence. Returns 1 committed, 0 refused.
local id, fence = ARGV[4], ARGV[5]
local jk = jkey(id)
local q = held(jk, fence)
if not q then return 0 end
redis.call('HSET', jk, 'result', ARGV[6])
redis.call('HDEL', jk, 'error')
terminal(id, q, 'running', 'succeeded', now_ms())
return 1
