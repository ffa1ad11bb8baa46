-- cancel (operator): ARGV[4] = id. queued/scheduled -> canceled (returns 1);
-- running -> cancel flag set, the worker stops it and acknowledges through
-- outcomes.lua (returns 2); terminal -> refused (returns 0); no record -> -1.
local id = ARGV[4]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 'status', 'queue')
if not f[1] then return -1 end
if f[1] == 'queued' or f[1] == 'scheduled' then
  terminal(id, f[2], f[1], 'canceled', now_ms())
  return 1
elseif f[1] == 'running' then
  redis.call('HSET', jk, 'cancel', 1)
  return 2
end
return 0
