-- batch_states (read-only): how many members of a slice of a batch are in
-- each non-terminal state, read from their records (the batch keeps exact
-- counts only of the terminal ones: counting every claim would cost every
-- job a read). ARGV[4] = batch id, ARGV[5] = offset, ARGV[6] = count.
-- A member whose record does not exist yet (staged, still to be released)
-- counts as queued. Returns {next_offset (-1 = done), queued, scheduled,
-- running}.
local bid, off, n = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local ids = redis.call('LRANGE', bkey(bid, 'ids'), off, off + n - 1)
local released = tonumber(redis.call('HGET', bkey(bid), 'released') or '0') or 0
local q, s, r = 0, 0, 0
for i, id in ipairs(ids) do
  local st = redis.call('HGET', jkey(id), 'status')
  if st == 'queued' then q = q + 1
  elseif st == 'scheduled' then s = s + 1
  elseif st == 'running' then r = r + 1
  elseif not st and off + i > released then q = q + 1
  end
end
local nxt = -1
if #ids == n then nxt = off + n end
return {nxt, q, s, r}
