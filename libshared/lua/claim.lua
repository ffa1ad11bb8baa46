-- claim: take up to `max` queued jobs of a queue for a worker. Each claim
-- gets a fencing token and a lease token, and a lease deadline from Redis
-- TIME. ARGV[4..] = queue, max, lease_ms, worker, nonce (the claimer's
-- random hex, unique per call). A paused queue yields nothing.
--
-- Fence: one more than the queue's counter, but never below Redis's clock
-- in microseconds (the counter is read and written once per call), so fences keep growing even when Redis lost the counter's
-- latest writes (a restart from an older AOF/RDB, a lagging replica
-- promoted): the fences issued before the loss are all below the clock of
-- any later claim, as long as Redis's clock does not step back.
-- Lease token: "<fence>-<nonce>", checked by every later fenced script;
-- the nonce makes it unforgeable even if a fence value came back.
--
-- Entries whose record is no longer queued are dropped (lazy deletion), at
-- most SCAN_EXTRA of them beyond max per call; a job past its expires_at is
-- expired instead of run. The claimed ids are kept under a receipt key for
-- one lease, so a claimer whose reply was lost can take them back
-- (claim_recover) instead of leaving them to lease expiry.
-- Ids come off pending in one LPOP of as many as are still wanted, and the
-- index and count writes of the whole call go out once at its end (the
-- batch in _lib.lua): per claimed job the call costs one HMGET and one HSET.
-- Returns a flat array, 10 entries per job: id, fence, lease token, attempt,
-- type, payload, max_attempts, timeout_s, created, run_at; then started
-- (now) and more (1 when the scan budget ran out before the list did: call
-- again at once).
local SCAN_EXTRA = 1000
local q, max, lease, worker, nonce = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
if redis.call('EXISTS', qkey(q, 'paused')) == 1 then return {0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pk, fk, ak, dk = qkey(q, 'pending'), qkey(q, 'fence'), qkey(q, 'active'), qkey(q, 'deadlines')
local out, ids = {}, {}
local last = tonumber(redis.call('GET', fk) or '0') or 0
if last < floor then last = floor end
local fence, snow, sdeadline = int(last), istr(now), istr(now + lease)
local claimed, scanned, more = 0, 0, 0
acc_begin()
while claimed < max do
  local want = math.min(max - claimed, max + SCAN_EXTRA - scanned)
  if want <= 0 then
    if redis.call('LLEN', pk) > 0 then more = 1 end
    break
  end
  local popped = redis.call('LPOP', pk, want)
  if not popped then break end
  scanned = scanned + #popped
  for _, id in ipairs(popped) do
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
        fence = incr_dec(fence)
        local token = fence .. '-' .. nonce
        local attempt = (tonumber(f[4]) or 0) + 1
        redis.call('HSET', jk, 'status', 'running', 'fence', fence, 'lease', token,
          'worker', worker, 'started', snow, 'cancel', '0', 'attempts', istr(attempt))
        zadd(ak, sdeadline, id)
        if f[2] then zrem(dk, id) end
        count(q, 'queued', -1)
        count(q, 'running', 1)
        out[#out + 1] = id
        out[#out + 1] = fence
        out[#out + 1] = token
        out[#out + 1] = attempt
        for i = 5, 10 do out[#out + 1] = f[i] or '' end
        ids[#ids + 1] = id
        claimed = claimed + 1
      end
    end
  end
  if #popped < want then break end
end
acc_flush()
if claimed > 0 then
  redis.call('SET', fk, fence)
  redis.call('SET', rkey(nonce), table.concat(ids, ','), 'PX', lease)
end
out[#out + 1] = now
out[#out + 1] = more
return out
