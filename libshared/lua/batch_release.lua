-- batch_release (api after a seal, janitor each tick): turns staged jobs of
-- sealed batches of queue ARGV[4] into queued (or scheduled) jobs, in
-- submission order, at most ARGV[5] per call. ARGV[6] = one batch id, or ''
-- for the batches of the queue's release index, oldest seal first. Each job
-- is released once (popped from the staged list in the same call), so any
-- number of api processes and janitors may release the same batch at once.
-- A batch with nothing left to release leaves the index.
-- Returns {released, more}: more is 1 when staged jobs remain (in the named
-- batch, or in the index).
local q, budget, only = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local ix = qkey(q, 'batches')
local bids = {only}
if only == '' then bids = redis.call('ZRANGE', ix, 0, 15) end
local now = now_ms()
local released, more = 0, 0
acc_begin()
for _, bid in ipairs(bids) do
  local bk, sk = bkey(bid), bkey(bid, 'staged')
  local f = redis.call('HMGET', bk, 'status', 'cb_pending')
  if f[1] ~= 'sealed' then
    if not f[2] then redis.call('ZREM', ix, bid) end -- else batch_callbacks' entry
  elseif released >= budget then
    more = 1
  else
    local es = redis.call('LPOP', sk, budget - released)
    local ids, hi = {}, 0
    if es then
      for _, s in ipairs(es) do
        local e = cmsgpack.unpack(s)
        local st = make_job(q, e, now, {'batch', bid, 'ext', '1'})
        if st == 'queued' then ids[#ids + 1] = e[1] elseif st == 'prio' then hi = hi + 1 end
      end
      push_pending(q, ids)
      if hi > 0 then wake(q, hi) end
      redis.call('HINCRBY', bk, 'released', #es)
      released = released + #es
    end
    if redis.call('LLEN', sk) == 0 then
      redis.call('ZREM', ix, bid)
    else
      more = 1
    end
  end
end
acc_flush()
return {released, more}
