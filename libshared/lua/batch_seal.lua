-- batch_seal (api): the point of no return of a batch submit. An open batch
-- holding exactly ARGV[5] staged jobs becomes 'sealed': its keys persist,
-- it joins its queue's release index (q:<q>:batches, which the api and the
-- janitor drain with batch_release.lua) and its remaining counter starts at
-- the total. ARGV[4] = batch id, ARGV[6] = idempotency key ('' = none): when
-- another batch sealed the same key first, this one is dropped and that one
-- answered.
-- Returns {1, id} sealed, {0, id} the key's batch, {-1} not open (expired),
-- {-2, staged} the staged count differs from the total.
local bid, total, idem = ARGV[4], ARGV[5], ARGV[6]
local bk = bkey(bid)
local f = redis.call('HMGET', bk, 'status', 'staged', 'queue')
if f[1] ~= 'open' then return {-1} end
if f[2] ~= total then return {-2, f[2]} end
if idem ~= '' then
  local ex = redis.call('SET', bidem_key(f[3], idem), bid, 'NX', 'GET')
  if ex then
    redis.call('DEL', bk, bkey(bid, 'staged'), bkey(bid, 'ids'))
    return {0, ex}
  end
  redis.call('HSET', bk, 'idem', idem)
end
local now = now_ms()
redis.call('HSET', bk, 'status', 'sealed', 'total', total, 'left', total, 'sealed', istr(now))
redis.call('PERSIST', bk)
redis.call('PERSIST', bkey(bid, 'staged'))
redis.call('PERSIST', bkey(bid, 'ids'))
redis.call('ZADD', qkey(f[3], 'batches'), now, bid)
return {1, bid}
