-- complete: commit success. ARGV[4..] = id, lease token, result (JSON text).
-- Guard: running under this lease token. Returns 1 committed, 0 refused.
local id, token = ARGV[4], ARGV[5]
local jk = jkey(id)
local q = held(jk, token)
if not q then return 0 end
redis.call('HSET', jk, 'result', ARGV[6])
redis.call('HDEL', jk, 'error')
terminal(id, q, 'running', 'succeeded', now_ms())
return 1
