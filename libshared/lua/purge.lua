-- purge (janitor): finished jobs whose record has expired (records carry a
-- TTL, so memory stays bounded even without a janitor) leave their terminal
-- index and count. ARGV[4..] = queue, batch. It walks the purge index
-- ("<state>|<id>" scored by the record's expiry time, written by terminal()),
-- oldest expiry first, so a long-lived record never blocks shorter-lived
-- ones behind it. An entry whose record still exists is rescheduled to the
-- record's own expiry (or dropped when the job moved on: retried). Returns
-- the number of index entries removed. A purged job's log list went with its
-- record (the same EXPIRE in terminal()); it is deleted here as well, so
-- none can outlive its record whatever happened to the record.
local q, batch = ARGV[4], tonumber(ARGV[5])
local now = now_ms()
local pk = qkey(q, 'purge')
local due = redis.call('ZRANGEBYSCORE', pk, '-inf', now, 'LIMIT', 0, batch)
local n = 0
for _, e in ipairs(due) do
  local bar = string.find(e, '|', 1, true)
  local st, id = string.sub(e, 1, (bar or 1) - 1), string.sub(e, (bar or 0) + 1)
  local jk = jkey(id)
  if not bar or not TERMINAL[st] then
    redis.call('ZREM', pk, e)                   -- not ours: drop it
  elseif redis.call('EXISTS', jk) == 0 then
    redis.call('ZREM', pk, e)
    redis.call('DEL', logs_key(id))
    if redis.call('ZREM', qkey(q, st), id) == 1 then
      count(q, st, -1)
      n = n + 1
    end
  elseif redis.call('HGET', jk, 'status') == st then
    local ttl = redis.call('PTTL', jk)
    if ttl < 0 then ttl = 1000 end               -- persistent: look again later
    redis.call('ZADD', pk, now + ttl, e)
  else
    redis.call('ZREM', pk, e)                   -- retried since: a new entry comes with its end
  end
end
return n
