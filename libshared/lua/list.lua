-- list (read-only): ids of a queue in one state, a page at a time.
-- ARGV[4..] = queue, state, offset, limit. Queued lists in claim order (the
-- prio ZSET, then pending in FIFO order) (entries lazily deleted are skipped by the caller's status check),
-- scheduled by run_at, running by lease deadline, terminal states newest
-- first. Returns {next_offset (-1 = done), id...}.
local q, st, off, lim = ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local ids
if st == 'queued' then
  -- claim order: the prio ZSET (priority 9 first), then pending
  ids = redis.call('ZRANGE', qkey(q, 'prio'), off, off + lim - 1)
  if #ids < lim then
    local skip = math.max(0, off - redis.call('ZCARD', qkey(q, 'prio')))
    local rest = redis.call('LRANGE', qkey(q, 'pending'), skip, skip + lim - #ids - 1)
    for _, id in ipairs(rest) do ids[#ids + 1] = id end
  end
elseif st == 'scheduled' then
  ids = redis.call('ZRANGE', qkey(q, 'scheduled'), off, off + lim - 1)
elseif st == 'running' then
  ids = redis.call('ZRANGE', qkey(q, 'active'), off, off + lim - 1)
else
  ids = redis.call('ZREVRANGE', qkey(q, st), off, off + lim - 1)
end
local nxt = -1
if #ids == lim then nxt = off + lim end
local out = {nxt}
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
