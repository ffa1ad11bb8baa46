-- expire_stale (janitor): queued/scheduled jobs past expires_at -> expired.
-- Never applies once started. ARGV[4..] = queue, batch. Expired queued ids
-- stay in pending (lazy deletion); trim_pending drops them from its head.
-- Returns the count.
local q, batch = ARGV[4], tonumber(ARGV[5])
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', qkey(q, 'deadlines'), '-inf', now, 'LIMIT', 0, batch)
local n = 0
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', jkey(id), 'status', 'started')
  local st = f[1]
  if (st == 'queued' or st == 'scheduled') and not f[2] then
    terminal(id, q, st, 'expired', now)
    n = n + 1
  else
    redis.call('ZREM', qkey(q, 'deadlines'), id)
  end
end
return n
