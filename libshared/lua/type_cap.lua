-- type_cap: set or clear one job type's concurrency cap in a queue (read by
-- claim: see type_room() in _lib.lua). ARGV[4..] = queue, type, cap (a
-- number sets it, '-' clears it), max_types. The queue's limits hash keeps
-- tconc:<type> = cap, and types = 1 while any is set, so claims of a queue
-- without type caps never look. Returns the cap now (0 = none), or -1 when
-- the queue has max_types caps already. (The caller puts the queue in the
-- queue set: src/queue_registry.c.)
local q, ty, cap, max_types = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local lk = qkey(q, 'limits')
local field = 'tconc:' .. ty
if cap == '-' then
  redis.call('HDEL', lk, field)
  redis.call('DEL', qkey(q, 'trun:' .. ty))
  local any = false
  for _, k in ipairs(redis.call('HKEYS', lk)) do
    if string.sub(k, 1, 6) == 'tconc:' then any = true end
  end
  if not any then redis.call('HDEL', lk, 'types') end
  wake(q, 16) -- a cleared cap lets waiting workers claim now
  return 0
end
if redis.call('HEXISTS', lk, field) == 0 then
  local n = 0
  for _, k in ipairs(redis.call('HKEYS', lk)) do
    if string.sub(k, 1, 6) == 'tconc:' then n = n + 1 end
  end
  if n >= max_types then return -1 end
end
redis.call('HSET', lk, field, cap, 'types', '1')
wake(q, 16)
return tonumber(cap)
