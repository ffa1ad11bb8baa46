-- _lib.lua: prepended to every script (see cmake/embed_lua.cmake).
-- Calling convention of every script:
--   KEYS[1] = the slot prefix "<prefix>:{<tag>}:" (every key of one queue and
--             its jobs starts with it, so a script stays in one cluster slot)
--   ARGV[1] = the global prefix "<prefix>:" (queues set, idempotency keys,
--             workers, the "done" channel)
--   ARGV[2] = default result TTL (s), ARGV[3] = failed (dead-letter) TTL (s)
--   ARGV[4..] = the script's own arguments.
-- Every deadline comes from Redis TIME (guarantee 4: no clock trust).
local SP = KEYS[1]
local GP = ARGV[1]
local RESULT_TTL = tonumber(ARGV[2])   -- the defaults live in C (queue.h), passed
local FAILED_TTL = tonumber(ARGV[3])   -- by every call (src/call.c)
local TERMINAL = {succeeded = true, failed = true, canceled = true, expired = true}

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Key names (the C side's twin is src/keys.c): a job record, a queue's
-- structure, a claim receipt (same slot); the global keys.
local function jkey(id) return SP .. 'job:' .. id end
local function qkey(q, what) return SP .. 'q:' .. q .. ':' .. what end
local function rkey(nonce) return SP .. 'receipt:' .. nonce end
local function idem_key(k) return GP .. 'idem:' .. k end
local function queues_key() return GP .. 'queues' end
local function workers_key() return GP .. 'workers' end
local function worker_key(id) return GP .. 'worker:' .. id end
-- another job's record, from its id alone (its tag is the id's first 4 chars)
local function any_jkey(id) return GP .. '{' .. string.sub(id, 1, 4) .. '}:job:' .. id end

-- counts is exact: every script that moves a job moves its count with it.
local function count(q, state, d) redis.call('HINCRBY', qkey(q, 'counts'), state, d) end

-- wake pushes up to n wake tokens (idle workers BLPOP the wake list), trimmed
-- to a small bound so an idle queue never accumulates them.
local function wake(q, n)
  local wk = qkey(q, 'wake')
  for _ = 1, math.min(n or 1, 16) do redis.call('LPUSH', wk, '1') end
  redis.call('LTRIM', wk, 0, 15)
end

-- leave takes id out of the index of state st and its count. queued ids are
-- deleted lazily from pending: claim drops entries whose record is no longer
-- queued, so LLEN may overcount slightly but counts never does.
local function leave(id, q, st)
  if st == 'scheduled' then redis.call('ZREM', qkey(q, 'scheduled'), id)
  elseif st == 'running' then redis.call('ZREM', qkey(q, 'active'), id)
  elseif TERMINAL[st] then
    redis.call('ZREM', qkey(q, st), id)
    redis.call('ZREM', qkey(q, 'purge'), st .. '|' .. id)
  end
  count(q, st, -1)
end

-- terminal moves id from state `from` to the terminal state `to`: finished
-- time, index, TTL on the record and its idempotency key, the purge entry
-- ("<state>|<id>" scored by the record's expiry, so purge finds expired
-- records by expiry time whatever their retention), and a PUBLISH for
-- long-polls when one watches the job (watch.lua marks it).
-- Extra field, value pairs (...) are stored with the status, in one HSET.
local function terminal(id, q, from, to, now, ...)
  local jk = jkey(id)
  leave(id, q, from)
  -- a running job left the deadlines index when it was claimed
  if from ~= 'running' then redis.call('ZREM', qkey(q, 'deadlines'), id) end
  redis.call('HSET', jk, 'status', to, 'finished', now, ...)
  redis.call('ZADD', qkey(q, to), now, id)
  count(q, to, 1)
  local f = redis.call('HMGET', jk, 'result_ttl', 'idem', 'watch')
  local ttl = FAILED_TTL
  if to ~= 'failed' then
    ttl = tonumber(f[1] or '0') or 0
    if ttl <= 0 then ttl = RESULT_TTL end
  end
  redis.call('EXPIRE', jk, ttl)
  redis.call('ZADD', qkey(q, 'purge'), now + ttl * 1000, to .. '|' .. id)
  if f[2] then redis.call('EXPIRE', idem_key(f[2]), ttl) end
  if f[3] then redis.call('PUBLISH', GP .. 'done', id) end  -- the done channel
end

-- held returns the job's queue when it is running under the lease token
-- `lease` ("<fence>-<nonce>", set by claim), else nil: the fencing guard of
-- heartbeat, complete, fail, release, progress and cancel-ack. The nonce is
-- the claimer's random one, so a token cannot come back even if Redis lost
-- the claim that issued it (a restore, a lagging replica promoted).
local function held(jk, lease)
  local f = redis.call('HMGET', jk, 'status', 'lease', 'queue')
  if f[1] ~= 'running' or f[2] ~= lease then return nil end
  return f[3]
end

-- int formats an integral Lua number as a plain decimal (tostring would
-- write 1e+15 style past 14 digits).
local function int(n) return string.format('%.0f', n) end

-- lose_lease handles a running job whose lease ran out (the janitor) or that
-- its worker gave up on after its lease ran out in Redis: the attempt was
-- counted at claim; a cancel request makes it canceled, no attempts left
-- dead-letters it, else it goes back to the head of its queue.
-- Returns 'canceled', 'failed' or 'queued'.
local function lose_lease(id, q, now, why)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'attempts', 'max_attempts', 'cancel')
  if f[3] == '1' then
    terminal(id, q, 'running', 'canceled', now)
    return 'canceled'
  end
  if (tonumber(f[1]) or 0) >= (tonumber(f[2]) or 0) then
    terminal(id, q, 'running', 'failed', now, 'error', why)
    return 'failed'
  end
  leave(id, q, 'running')
  redis.call('HSET', jk, 'status', 'queued', 'error', why)
  redis.call('LPUSH', qkey(q, 'pending'), id)
  count(q, 'queued', 1)
  return 'queued'
end


-- ---- the outcomes of a claim (outcomes.lua, one or many per call) ----
-- Each re-checks the fencing guard (held) and answers 0 when it refuses.

-- outcome_complete: success with result (JSON text). 1 committed.
local function outcome_complete(id, token, result, now)
  local jk = jkey(id)
  local q = held(jk, token)
  if not q then return 0 end
  redis.call('HDEL', jk, 'error')
  terminal(id, q, 'running', 'succeeded', now, 'result', result)
  return 1
end

-- outcome_fail: a failed attempt; permanent is '1'/'0', backoff_ms comes
-- from C (with jitter). 1 scheduled for retry, 2 dead-lettered, 3 canceled
-- (a cancel was requested while it ran: never retried). A malformed record
-- (missing counters) is dead-lettered, never retried forever.
local function outcome_fail(id, token, err, permanent, backoff_ms, now)
  local jk = jkey(id)
  local q = held(jk, token)
  if not q then return 0 end
  local a = redis.call('HMGET', jk, 'attempts', 'max_attempts', 'cancel')
  if a[3] == '1' then
    terminal(id, q, 'running', 'canceled', now, 'error', err)
    return 3
  end
  if permanent == '1' or (tonumber(a[1]) or 0) >= (tonumber(a[2]) or 0) then
    terminal(id, q, 'running', 'failed', now, 'error', err)
    return 2
  end
  local run_at = now + (tonumber(backoff_ms) or 0)
  leave(id, q, 'running')
  redis.call('HSET', jk, 'status', 'scheduled', 'run_at', run_at, 'error', err)
  redis.call('ZADD', qkey(q, 'scheduled'), run_at, id)
  count(q, 'scheduled', 1)
  return 1
end

-- outcome_release: the worker hands a running job back.
--   mode 'drain' (shutdown): to the head of its queue, attempt given back.
--   mode 'abandon' (the worker's lease watchdog stopped the handler because
--     renewals were failing): while the lease still holds in Redis the
--     worker gave up first, so it is a drain (attempt given back); once the
--     lease has run out in Redis it is what the janitor does for a lost lease
--     (the attempt stays spent; none left dead-letters it).
-- 1 released (queued), 2 canceled instead (a cancel was requested: the job
-- must not run again), 3 dead-lettered (abandon, no attempts left).
local function outcome_release(id, token, mode, now)
  local jk = jkey(id)
  local q = held(jk, token)
  if not q then return 0 end
  if mode == 'abandon' then
    local deadline = tonumber(redis.call('ZSCORE', qkey(q, 'active'), id) or '0') or 0
    if deadline <= now then
      local st = lose_lease(id, q, now, 'lease expired: worker lost contact with redis')
      if st == 'queued' then
        wake(q, 1)
        return 1
      end
      if st == 'canceled' then return 2 end
      return 3
    end
  end
  if redis.call('HGET', jk, 'cancel') == '1' then
    terminal(id, q, 'running', 'canceled', now)
    return 2
  end
  leave(id, q, 'running')
  redis.call('HINCRBY', jk, 'attempts', -1)
  redis.call('HSET', jk, 'status', 'queued')
  redis.call('LPUSH', qkey(q, 'pending'), id)
  count(q, 'queued', 1)
  wake(q, 1)
  return 1
end

-- outcome_cancel_ack: the worker stopped a job whose cancel was requested.
-- 1 canceled; 0 when the guard refuses or no cancel was requested.
local function outcome_cancel_ack(id, token, now)
  local jk = jkey(id)
  local q = held(jk, token)
  if not q or redis.call('HGET', jk, 'cancel') ~= '1' then return 0 end
  terminal(id, q, 'running', 'canceled', now)
  return 1
end
