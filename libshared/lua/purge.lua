-- purge (janitor): terminal index entries whose record has expired (records
-- carry a TTL, so memory stays bounded even without a janitor) are removed
-- with their count. ARGV[4..] = queue, batch (per terminal state, oldest
-- first). Returns the number removed.
local q, batch = ARGV[4], tonumber(ARGV[5])
local n = 0
for st, _ in pairs(TERMINAL) do
  local zk = qkey(q, st)
  local ids = redis.call('ZRANGE', zk, 0, batch - 1)
  for _, id in ipairs(ids) do
    if redis.call('EXISTS', jkey(id)) == 0 then
      redis.call('ZREM', zk, id)
      count(q, st, -1)
      n = n + 1
    end
  end
end
return n
