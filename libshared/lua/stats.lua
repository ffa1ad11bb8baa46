-- stats (read-only): one queue's exact counts, pause flag and the run_at of
-- its oldest waiting job. ARGV[4] = queue.
-- Returns {paused (0/1), oldest_run_at_ms (0 = none), state, n, state, n, ...}.
local q = ARGV[4]
local out = {redis.call('EXISTS', qkey(q, 'paused')), 0}
local head = redis.call('LRANGE', qkey(q, 'pending'), 0, 49)
for _, id in ipairs(head) do
  local f = redis.call('HMGET', jkey(id), 'status', 'run_at')
  if f[1] == 'queued' then
    out[2] = tonumber(f[2]) or 0
    break
  end
end
local c = redis.call('HGETALL', qkey(q, 'counts'))
for i = 1, #c do out[#out + 1] = c[i] end
return out
