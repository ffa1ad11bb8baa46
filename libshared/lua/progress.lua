-- progress: ARGV[4..] = id, lease token, progress (JSON text). Guard: running
-- under this lease token. Returns 1 stored, 0 refused.
local id, token = ARGV[4], ARGV[5]
local jk = jkey(id)
if not held(jk, token) then return 0 end
redis.call('HSET', jk, 'progress', ARGV[6])
return 1
