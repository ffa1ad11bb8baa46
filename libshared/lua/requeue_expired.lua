-- requeue_expired (janitor): running jobs whose lease deadline passed.
-- ARGV[4..] = queue, batch. The attempt was counted at claim; with attempts
-- left the job goes back to the head of the queue, else it is dead-lettered;
-- a job whose cancel was requested becomes canceled. The old holder's fence
-- no longer matches a running record, so it can commit nothing.
-- Returns {requeued, failed, canceled, dropped}.
local q, batch = ARGV[4], tonumber(ARGV[5])
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', qkey(q, 'active'), '-inf', now, 'LIMIT', 0, batch)
local requeued, failed, canceled, dropped = 0, 0, 0, 0
for _, id in ipairs(ids) do
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'status', 'attempts', 'max_attempts', 'cancel')
  if f[1] ~= 'running' then
    redis.call('ZREM', qkey(q, 'active'), id)   -- drift: index entry without a running record
    dropped = dropped + 1
  elseif f[4] == '1' then
    terminal(id, q, 'running', 'canceled', now)
    canceled = canceled + 1
  elseif (tonumber(f[2]) or 0) >= (tonumber(f[3]) or 0) then
    redis.call('HSET', jk, 'error', 'lease expired: worker lost')
    terminal(id, q, 'running', 'failed', now)
    failed = failed + 1
  else
    leave(id, q, 'running')
    redis.call('HSET', jk, 'status', 'queued', 'error', 'lease expired: worker lost')
    redis.call('LPUSH', qkey(q, 'pending'), id)
    count(q, 'queued', 1)
    requeued = requeued + 1
  end
end
if requeued > 0 then wake(q, requeued) end
return {requeued, failed, canceled, dropped}
