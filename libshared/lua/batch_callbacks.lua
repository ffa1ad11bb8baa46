-- batch_callbacks (janitor): the callbacks of done batches of queue ARGV[4]
-- whose callback queue is in another slot (batch_finish in _lib.lua marks
-- them cb_pending and puts them in the queue's release index), at most
-- ARGV[5]. The janitor submits each with the enqueue script in the
-- callback's slot under the idempotency key "batch:<id>:callback" (so two
-- janitors, or a janitor that died midway, make one job), then records it
-- with batch_callback_set.lua.
-- Returns a flat list: per batch 12 strings: batch id, callback queue, then
-- the callback's staged entry (id, type, payload, max_attempts, timeout_s,
-- delay_ms, run_at_ms, expires_in_ms, result_ttl_s, priority).
local q, max = ARGV[4], tonumber(ARGV[5])
local out = {}
for _, bid in ipairs(redis.call('ZRANGE', qkey(q, 'batches'), 0, max - 1)) do
  local f = redis.call('HMGET', bkey(bid), 'status', 'cb_pending', 'cbq', 'cb')
  if f[1] == 'done' and f[2] and f[4] then
    out[#out + 1] = bid
    out[#out + 1] = f[3] or q
    local e = cmsgpack.unpack(f[4])
    for i = 1, 10 do out[#out + 1] = e[i] or '' end
  elseif not f[1] then
    redis.call('ZREM', qkey(q, 'batches'), bid) -- expired meanwhile
  end
end
return out
