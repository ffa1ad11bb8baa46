-- batch_open (api): starts a batch of queue ARGV[5] with id ARGV[4] in
-- state 'open': staged jobs are invisible to every worker, and the open
-- batch's keys expire after ARGV[8] ms unless batch_seal makes them
-- persistent, so a submit that dies before its seal leaves nothing runnable
-- and nothing behind. ARGV[6] unused (the caller checks max_queues and keeps
-- the queue set: src/queue_registry.c), ARGV[7] = the
-- batch's result_ttl_s (0 = the default), ARGV[9] = idempotency key ('' =
-- none), ARGV[10..19] = the callback job's staged entry (see make_job in
-- _lib.lua; ARGV[10] '' = no callback), ARGV[20] = the callback's queue.
-- Returns {1, id} opened, {0, id} the batch of the idempotency key (sealed
-- already: nothing to do). The idempotency key is global outside Redis
-- Cluster, the batch queue's in it (bidem_key in _lib.lua).
local bid, q, ttl, open_ms, idem = ARGV[4], ARGV[5], ARGV[7], ARGV[8], ARGV[9]
if idem ~= '' then
  local ex = redis.call('GET', bidem_key(q, idem))
  if ex then return {0, ex} end
end
local bk = bkey(bid)
local f = {'queue', q, 'status', 'open', 'total', '0', 'staged', '0', 'released', '0',
  'created', istr(now_ms()), 'result_ttl', ttl}
if ARGV[10] ~= '' then
  f[#f + 1] = 'cb'
  f[#f + 1] = cmsgpack.pack({unpack(ARGV, 10, 19)})
  f[#f + 1] = 'cbq'
  f[#f + 1] = ARGV[20]
end
redis.call('HSET', bk, unpack(f))
redis.call('PEXPIRE', bk, open_ms)
return {1, bid}
