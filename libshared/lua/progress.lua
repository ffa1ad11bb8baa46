-- progress: ARGV[4..] = id, fence, progress (JSON text). Guard: running
-- under this fence. Returns 1 stored, 0 refused.
local id, fence = ARGV[4], ARGV[5]
local jk = jkey(id)
if not held(jk, fence) then return 0 end
redis.call('HSET', jk, 'progress', ARGV[6])
return 1
