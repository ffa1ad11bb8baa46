-- promote_due (janitor): scheduled jobs whose run_at passed -> queued.
-- ARGV[4..] = queue, batch. Returns the number promoted.
local q, batch = ARGV[4], tonumber(ARGV[5])
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', qkey(q, 'scheduled'), '-inf', now, 'LIMIT', 0, batch)
local n = 0
for _, id in ipairs(ids) do
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'status', 'priority')
  if f[1] == 'scheduled' then
    leave(id, q, 'scheduled')
    redis.call('HSET', jk, 'status', 'queued')
    ready(q, id, f[2], false)
    count(q, 'queued', 1)
    n = n + 1
  else
    redis.call('ZREM', qkey(q, 'scheduled'), id)
  end
end
if n > 0 then wake(q, n) end
return n
