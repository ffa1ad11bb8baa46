-- stats (read-only): one queue's exact counts, pause flag and the run_at of
-- its oldest waiting job. ARGV[4] = queue.
-- Returns {paused (0/1), oldest_run_at_ms (0 = none), rate_n, rate_ms,
-- concurrency, tokens ('' for no limit; tokens refilled to now), state, n,
-- state, n, ..., then 'tcap:<type>', '<cap>:<running>' per capped job type}.
local q = ARGV[4]
local out = {redis.call('EXISTS', qkey(q, 'paused')), 0}
local l = redis.call('HMGET', qkey(q, 'limits'), 'rate_n', 'rate_ms', 'conc', 'tokens', 'ts', 'types')
local tokens = ''
if l[1] then
  local n, per = tonumber(l[1]) or 1, tonumber(l[2]) or 1000
  local t = tonumber(l[4] or '') or n
  local now = now_ms()
  local ts = tonumber(l[5] or '') or now
  if now > ts then t = math.min(n, t + (now - ts) * n / per) end
  tokens = tostring(math.floor(t))
end
out[3], out[4], out[5], out[6] = l[1] or '', l[2] or '', l[3] or '', tokens
-- the oldest of the first live entry of pending and the first 50 of prio
-- (ordered by priority, not age)
local function oldest(ids, first_only)
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', jkey(id), 'status', 'run_at')
    if f[1] == 'queued' then
      local t = tonumber(f[2]) or 0
      if t > 0 and (out[2] == 0 or t < out[2]) then out[2] = t end
      if first_only then return end
    end
  end
end
oldest(redis.call('LRANGE', qkey(q, 'pending'), 0, 49), true)
oldest(redis.call('ZRANGE', qkey(q, 'prio'), 0, 49), false)
local c = redis.call('HGETALL', qkey(q, 'counts'))
for i = 1, #c do out[#out + 1] = c[i] end
-- caps per job type (type_cap.lua): 'tcap:<type>', '<cap>:<running>'
if l[6] == '1' then
  local h = redis.call('HGETALL', qkey(q, 'limits'))
  for i = 1, #h, 2 do
    if string.sub(h[i], 1, 6) == 'tconc:' then
      local ty = string.sub(h[i], 7)
      local running = 0
      for _, id in ipairs(redis.call('ZRANGE', qkey(q, 'trun:' .. ty), 0, -1)) do
        if redis.call('HGET', jkey(id), 'status') == 'running' then running = running + 1 end
      end
      out[#out + 1] = 'tcap:' .. ty
      out[#out + 1] = h[i + 1] .. ':' .. running
    end
  end
end
return out
