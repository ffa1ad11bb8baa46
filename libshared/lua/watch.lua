-- watch (api long-polls): marks a job as waited on and returns its record,
-- in one round trip. The scripts that finish a job PUBLISH its id on the
-- done channel only when it is marked (terminal() in _lib.lua), so jobs
-- nobody waits on cost no PUBLISH. A long-poll registers its waiter first,
-- then watches: a job that finished before the mark is seen terminal in the
-- returned record, one that finishes after it is published. ARGV[4] = id.
-- Returns the HGETALL of the record ({} when there is none).
local jk = jkey(ARGV[4])
if redis.call('EXISTS', jk) == 0 then return {} end
redis.call('HSET', jk, 'watch', 1)
return redis.call('HGETALL', jk)
