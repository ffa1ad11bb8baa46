-- claim: take up to `max` queued jobs of a queue for a worker. Each claim
-- gets a fencing token from INCR and a lease deadline from Redis TIME.
-- ARGV[4..] = queue, max, lease_ms, worker. A paused queue yields nothing.
-- Entries whose record is no longer queued are dropped (lazy deletion); a
-- job past its expires_at is expired instead of run.
-- Returns a flat array, 9 entries per job: id, fence, attempt, type, payload,
-- max_attempts, timeout_s, created, run_at; then started (now) at the end.
local q, max, lease, worker = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if redis.call('EXISTS', qkey(q, 'paused')) == 1 then return {} end
local now = now_ms()
local pk = qkey(q, 'pending')
local out = {}
local claimed, scanned = 0, 0
while claimed < max and scanned < max + 1000 do
  local id = redis.call('LPOP', pk)
  if not id then break end
  scanned = scanned + 1
  local jk = jkey(id)
  -- one read for the guard and the answer: status, expires_at, started,
  -- attempts, then the 6 fields handed to the worker
  local f = redis.call('HMGET', jk, 'status', 'expires_at', 'started', 'attempts', 'type',
    'payload', 'max_attempts', 'timeout_s', 'created', 'run_at')
  if f[1] == 'queued' then
    -- expiry applies only to a job that never started (not to one released
    -- by a drain or requeued after a lost lease)
    if f[2] and not f[3] and tonumber(f[2]) <= now then
      terminal(id, q, 'queued', 'expired', now)
    else
      local fence = redis.call('INCR', qkey(q, 'fence'))
      local attempt = (tonumber(f[4]) or 0) + 1
      redis.call('HSET', jk, 'status', 'running', 'fence', fence, 'worker', worker,
        'started', now, 'cancel', 0, 'attempts', attempt)
      redis.call('ZADD', qkey(q, 'active'), now + lease, id)
      if f[2] then redis.call('ZREM', qkey(q, 'deadlines'), id) end
      count(q, 'queued', -1)
      count(q, 'running', 1)
      out[#out + 1] = id
      out[#out + 1] = fence
      out[#out + 1] = attempt
      for i = 5, 10 do out[#out + 1] = f[i] or '' end
      claimed = claimed + 1
    end
  end
end
out[#out + 1] = now
return out
