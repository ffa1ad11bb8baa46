-- trim_pending (janitor): drops dead entries (the record is no longer
-- queued: canceled, expired, already claimed after a retry, or gone) from
-- the head of a queue's pending list, at most `batch` per call, stopping at
-- the first live entry. Cancel and expiry leave their ids in pending (an
-- LREM would cost O(list length) per id); this keeps them from piling up in
-- front of new jobs, so an idle worker starts a new job at once however
-- many jobs died before it. ARGV[4..] = queue, batch. Returns the number
-- dropped.
-- The prio ZSET (jobs of priority 1-9) is trimmed from its head the same way.
local q, batch = ARGV[4], tonumber(ARGV[5])
local pk = qkey(q, 'pending')
local n = 0
while n < batch do
  local id = redis.call('LINDEX', pk, 0)
  if not id or redis.call('HGET', jkey(id), 'status') == 'queued' then break end
  redis.call('LPOP', pk)
  n = n + 1
end
local zk = qkey(q, 'prio')
while n < batch do
  local head = redis.call('ZRANGE', zk, 0, 0)
  local id = head[1]
  if not id or redis.call('HGET', jkey(id), 'status') == 'queued' then break end
  redis.call('ZREM', zk, id)
  n = n + 1
end
return n
