-- requeue_expired (janitor): running jobs whose lease deadline passed.
-- ARGV[4..] = queue, batch. The attempt was counted at claim; with attempts
-- left the job goes back to the head of the queue, else it is dead-lettered;
-- a job whose cancel was requested becomes canceled (lose_lease). The old
-- holder's lease token no longer matches a running record, so it can commit
-- nothing. Returns {requeued, failed, canceled, dropped}.
local q, batch = ARGV[4], tonumber(ARGV[5])
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', qkey(q, 'active'), '-inf', now, 'LIMIT', 0, batch)
local requeued, failed, canceled, dropped = 0, 0, 0, 0
for _, id in ipairs(ids) do
  if redis.call('HGET', jkey(id), 'status') ~= 'running' then
    redis.call('ZREM', qkey(q, 'active'), id)   -- drift: index entry without a running record
    dropped = dropped + 1
  else
    local st = lose_lease(id, q, now, 'lease expired: worker lost')
    if st == 'canceled' then canceled = canceled + 1
    elseif st == 'failed' then failed = failed + 1
    else requeued = requeued + 1 end
  end
end
if requeued > 0 then wake(q, requeued) end
return {requeued, failed, canceled, dropped}
