-- batch_stage (api): adds a chunk of jobs to an open batch, held (a staged
-- entry each, in no queue: nothing can claim them) until the seal.
-- ARGV[4] = batch id, ARGV[5] = the open batch's lifetime (ms, renewed),
-- ARGV[6..] = 10 arguments per job: id, type, payload, max_attempts,
-- timeout_s, delay_ms, run_at_ms, expires_in_ms, result_ttl_s, priority.
-- Returns the number staged so far, or -1 when the batch is not open (it
-- expired, or was sealed or dropped).
local bid, open_ms = ARGV[4], ARGV[5]
local bk = bkey(bid)
if redis.call('HGET', bk, 'status') ~= 'open' then return -1 end
local packed, ids = {}, {}
for base = 6, #ARGV - 9, 10 do
  packed[#packed + 1] = cmsgpack.pack({unpack(ARGV, base, base + 9)})
  ids[#ids + 1] = ARGV[base]
end
local sk, ik = bkey(bid, 'staged'), bkey(bid, 'ids')
for i = 1, #ids, 4000 do
  local j = math.min(i + 3999, #ids)
  redis.call('RPUSH', sk, unpack(packed, i, j))
  redis.call('RPUSH', ik, unpack(ids, i, j))
end
local n = redis.call('HINCRBY', bk, 'staged', #ids)
redis.call('PEXPIRE', bk, open_ms)
redis.call('PEXPIRE', sk, open_ms)
redis.call('PEXPIRE', ik, open_ms)
return n
