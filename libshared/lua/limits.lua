-- limits: set or clear a queue's operator limits (read by claim: see
-- limit() in _lib.lua). ARGV[4..] = queue, rate_n, rate_ms, concurrency;
-- for the rate and for the concurrency, '' keeps it, '-' clears it, a
-- number sets it (a new rate starts with a full bucket). Returns the
-- limits as they are now: {rate_n, rate_ms, concurrency} ('' for none).
-- (The caller puts the queue in the queue set: src/queue_registry.c.)
local q, rn, rms, conc = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local lk = qkey(q, 'limits')
if rn == '-' then
  redis.call('HDEL', lk, 'rate_n', 'rate_ms', 'tokens', 'ts')
elseif rn ~= '' then
  redis.call('HSET', lk, 'rate_n', rn, 'rate_ms', rms, 'tokens', rn)
  redis.call('HDEL', lk, 'ts')
end
if conc == '-' then
  redis.call('HDEL', lk, 'conc')
elseif conc ~= '' then
  redis.call('HSET', lk, 'conc', conc)
end
wake(q, 16) -- a raised or cleared limit lets waiting workers claim now
local l = redis.call('HMGET', lk, 'rate_n', 'rate_ms', 'conc')
return {l[1] or '', l[2] or '', l[3] or ''}
