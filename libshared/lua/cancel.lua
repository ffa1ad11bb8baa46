-- cancel: ARGV[4..] = id, mode, lease token.
-- mode 'request' (operator): queued/scheduled -> canceled (returns 1);
--   running -> cancel flag set, the worker stops it (returns 2);
--   terminal -> refused (returns 0); no record -> -1.
-- mode 'ack' (worker, after stopping the handler): guard running under token
--   with the flag set -> canceled (1), else 0.
local id, mode, token = ARGV[4], ARGV[5], ARGV[6]
local jk = jkey(id)
if mode == 'ack' then
  local q = held(jk, token)
  if not q or redis.call('HGET', jk, 'cancel') ~= '1' then return 0 end
  terminal(id, q, 'running', 'canceled', now_ms())
  return 1
end
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
