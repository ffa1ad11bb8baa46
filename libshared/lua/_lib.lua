-- _lib.lua: the head of the jobmill Redis function library. Each other
-- lua/NAME.lua becomes a local function after it, registered as
-- jm_<hash>_NAME (cmake/embed_lua.cmake), so this code runs once, at
-- FUNCTION LOAD, instead of on every call as an EVAL prelude would.
-- Calling convention of every function (FCALL name numkeys keys... args...):
--   KEYS[1] = the slot prefix "<prefix>:{<tag>}:" (every key of one queue and
--             its jobs starts with it, so a call stays in one cluster slot)
--             (the worker registry's scripts get "<prefix>:{registry}:")
--   ARGV[1] = the global prefix "<prefix>:" (the "done" channel only: no
--             script touches a key outside its KEYS[1] slot)
--   ARGV[2] = default result TTL (s), ARGV[3] = failed (dead-letter) TTL (s)
--   ARGV[4..] = the script's own arguments.
-- begin() (at the end of this file) sets these per call; the scripts read
-- KEYS and ARGV as they would under EVAL.
-- Every deadline comes from Redis TIME (guarantee 4: no clock trust).
local KEYS, ARGV = {}, {}
local SP, GP = '', ''
local RESULT_TTL, FAILED_TTL = 0, 0    -- the defaults live in C (queue.h), passed
                                       -- by every call (src/call.c)
local TERMINAL = {succeeded = true, failed = true, canceled = true, expired = true}

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Key names (the C side's twin is src/keys.c): a job record, a queue's
-- structure, a claim receipt, an idempotency key (all in the call's slot);
-- the worker registry (its scripts run in the "{registry}" slot).
local function jkey(id) return SP .. 'job:' .. id end
local function qkey(q, what) return SP .. 'q:' .. q .. ':' .. what end
local function rkey(nonce) return SP .. 'receipt:' .. nonce end
local function logs_key(id) return SP .. 'job:' .. id .. ':logs' end -- log_append.lua
-- Idempotency keys (a job's 'idem', a batch's 'bidem') are global on a
-- single Redis or Sentinel: one key space for every queue, as the API
-- promises, so the job of a key may be in another queue's slot (any_jkey).
-- Redis Cluster scopes them per queue, in the queue's slot, since no script
-- may span slots (docs/cluster.md). The server's mode is asked once (INFO
-- cluster) and kept: it cannot change while the library is loaded.
local CLUSTER = nil
local function cluster()
  if CLUSTER == nil then
    CLUSTER = string.find(redis.call('INFO', 'cluster'), 'cluster_enabled:1', 1, true) ~= nil
  end
  return CLUSTER
end
local function idem_key(q, k)
  if cluster() then return qkey(q, 'idem:' .. k) end
  return GP .. 'idem:' .. k
end
local function bidem_key(q, k)
  if cluster() then return qkey(q, 'bidem:' .. k) end
  return GP .. 'bidem:' .. k
end
-- another job's record, from its id alone (its tag is the id's first 4 chars)
local function any_jkey(id) return GP .. '{' .. string.sub(id, 1, 4) .. '}:job:' .. id end
local function workers_key() return SP .. 'workers' end
local function worker_key(id) return SP .. 'worker:' .. id end

-- int formats an integral Lua number as a plain decimal (tostring would
-- write 1e+15 style past 14 digits).
local function int(n) return string.format('%.0f', n) end

-- Numbers handed to redis.call are formatted through printf as doubles,
-- a few times per job in the hot scripts: istr formats each distinct value
-- once per call (timestamps, deadlines, attempt numbers repeat across the
-- jobs of a call), and incr_dec counts up a decimal string without
-- formatting at all (consecutive fences).
local ISTR = {} -- per call: reset by begin()
local function istr(n)
  local v = ISTR[n]
  if not v then
    v = int(n)
    ISTR[n] = v
  end
  return v
end

local function incr_dec(d)
  local i = #d
  while i > 0 and string.byte(d, i) == 57 do i = i - 1 end -- trailing '9's
  if i == 0 then return '1' .. string.rep('0', #d) end
  return string.sub(d, 1, i - 1) .. string.char(string.byte(d, i) + 1) .. string.rep('0', #d - i)
end

-- Batched writes. The hot scripts (claim, outcomes) move many jobs per call:
-- between acc_begin() and acc_flush() the index writes (zadd, zrem) and the
-- count moves are gathered per key and sent at the end, one ZADD/ZREM per
-- index and one HINCRBY per queue and state, instead of one each per job.
-- Outside a batch (ACC nil) every write goes to Redis at once. The one rule
-- inside a batch: nothing reads a gathered member before the flush (a call
-- moves each job once; outcomes.lua flushes before a job's second outcome).
-- Redis does not roll a script back: a runtime error midway (only malformed
-- arguments can cause one) keeps the record writes made so far and loses
-- the gathered ones, which the janitor's reconcile repairs (a job running
-- without a lease, a record in no index, counts that drift).
local ACC = nil -- per call: reset by begin()
local STATES = {'queued', 'scheduled', 'running', 'succeeded', 'failed', 'canceled', 'expired'}

-- ACC: zadd and zrem map a key to its gathered arguments, keys lists the
-- (command, key) pairs in first-use order; counts maps a queue to its moves.
local function acc_begin() ACC = {zadd = {}, zrem = {}, keys = {}, counts = {}, queues = {}} end

local function acc_list(map, cmd, key)
  local t = map[key]
  if not t then
    t = {}
    map[key] = t
    ACC.keys[#ACC.keys + 1] = {cmd, key, t}
  end
  return t
end

local function zadd(key, score, member)
  if not ACC then
    redis.call('ZADD', key, score, member)
    return
  end
  local t = ACC.zadd[key] or acc_list(ACC.zadd, 'ZADD', key)
  t[#t + 1] = score
  t[#t + 1] = member
end

local function zrem(key, member)
  if not ACC then
    redis.call('ZREM', key, member)
    return
  end
  local t = ACC.zrem[key] or acc_list(ACC.zrem, 'ZREM', key)
  t[#t + 1] = member
end

-- counts is exact: every script that moves a job moves its count with it.
local function count(q, state, d)
  if not ACC then
    redis.call('HINCRBY', qkey(q, 'counts'), state, d)
    return
  end
  local c = ACC.counts[q]
  if not c then
    c = {}
    ACC.counts[q] = c
    ACC.queues[#ACC.queues + 1] = q
  end
  c[state] = (c[state] or 0) + d
end

-- acc_flush sends what the batch gathered (in chunks that fit unpack's
-- stack) and ends the batch.
local function acc_flush()
  local a = ACC
  ACC = nil
  if not a then return end
  for _, k in ipairs(a.keys) do
    local t = k[3]
    if #t <= 4000 then
      redis.call(k[1], k[2], unpack(t))
    else
      for i = 1, #t, 4000 do redis.call(k[1], k[2], unpack(t, i, math.min(i + 3999, #t))) end
    end
  end
  for _, q in ipairs(a.queues) do
    local c = a.counts[q]
    for _, st in ipairs(STATES) do
      if c[st] and c[st] ~= 0 then redis.call('HINCRBY', qkey(q, 'counts'), st, c[st]) end
    end
  end
end

-- wake pushes up to n wake tokens (idle workers BLPOP the wake list), trimmed
-- to a small bound so an idle queue never accumulates them.
local WAKE_MAX = 16
local function wake(q, n)
  local wk = qkey(q, 'wake')
  local len = 0
  for _ = 1, math.min(n or 1, WAKE_MAX) do len = redis.call('LPUSH', wk, '1') end
  if len > WAKE_MAX then redis.call('LTRIM', wk, 0, WAKE_MAX - 1) end
end

-- Priorities. A queued job of priority 0 (the default, and every job that
-- never set one) waits in the queue's pending LIST, FIFO: the LLEN-visible
-- backlog. A job of priority 1-9 waits in the queue's prio ZSET instead,
-- scored so ZPOPMIN takes the highest priority first and, within a level,
-- the job that came first: (9 - p) * PRIO_SPAN + PRIO_MID + seq, seq from
-- the queue's prio_seq counter (added for the tail, subtracted for the head
-- as LPUSH does, so a job handed back goes before its level's waiting jobs).
-- Claim takes from prio before pending; the queue's limits hash (read by
-- every claim anyway) carries prio = 1 while prio may hold jobs, so a queue
-- that never sees a priority costs no extra call. Lazily deleted entries
-- (cancel, expiry) stay in prio like in pending, until claim drops them.
local PRIO_SPAN, PRIO_MID = 35184372088832, 17592186044416 -- 2^45, 2^44

local function prio_score(p, seq) return int((9 - p) * PRIO_SPAN + PRIO_MID + seq) end

local function prio_mark(q) redis.call('HSET', qkey(q, 'limits'), 'prio', '1') end

-- ready puts queued job id where claim finds it: the tail of its level, or
-- its head (a job handed back). prio is the record's priority field.
local function ready(q, id, prio, head)
  local p = tonumber(prio or '') or 0
  if p <= 0 then
    if head then redis.call('LPUSH', qkey(q, 'pending'), id) else redis.call('RPUSH', qkey(q, 'pending'), id) end
    return
  end
  local seq = redis.call('INCR', qkey(q, 'prio_seq'))
  if head then seq = -seq end
  redis.call('ZADD', qkey(q, 'prio'), prio_score(p, seq), id)
  prio_mark(q)
end

-- leave takes id out of the index of state st and its count. queued ids are
-- deleted lazily from pending: claim drops entries whose record is no longer
-- queued, so LLEN may overcount slightly but counts never does.
local function leave(id, q, st)
  if st == 'scheduled' then zrem(qkey(q, 'scheduled'), id)
  elseif st == 'running' then zrem(qkey(q, 'active'), id)
  elseif TERMINAL[st] then
    zrem(qkey(q, st), id)
    zrem(qkey(q, 'purge'), st .. '|' .. id)
  end
  count(q, st, -1)
end

-- ---- batches (docs/batches.md; lua/batch_*.lua) ----
-- A batch lives in its queue's slot: bkey(bid) the HASH (queue, status
-- open|sealed|done, total, staged, released, left, n_<terminal state>, cb,
-- callback, ...), bkey(bid, 'ids') its member ids in submission order,
-- bkey(bid, 'staged') the members not yet released (msgpack entries).
-- Members carry a 'batch' field: terminal_f calls batch_member_done for them
-- only, so a job outside a batch costs nothing here.
local function bkey(bid, what)
  if what then return SP .. 'batch:' .. bid .. ':' .. what end
  return SP .. 'batch:' .. bid
end

-- make_job writes the record of a new job of queue q from a staged entry e
-- ({id, type, payload, max_attempts, timeout_s, delay_ms, run_at_ms,
-- expires_in_ms, result_ttl_s, priority}) plus the field pairs in x.
-- Returns 'queued' (the caller pushes e[1] onto pending, in order),
-- 'prio' (queued at a priority above 0: in the prio ZSET already; the
-- caller wakes) or 'scheduled' (indexed here).
local function make_job(q, e, now, x)
  local snow = istr(now)
  local run_at, srun = now, snow
  local delay, at = tonumber(e[6]) or 0, tonumber(e[7]) or 0
  if delay > 0 then run_at = now + delay elseif at > now then run_at = at end
  if run_at ~= now then srun = istr(run_at) end
  local status = 'queued'
  if run_at > now then status = 'scheduled' end
  local f = {'queue', q, 'type', e[2], 'payload', e[3], 'status', status, 'attempts', '0',
    'max_attempts', e[4], 'timeout_s', e[5], 'fence', '0', 'created', snow, 'run_at', srun,
    'result_ttl', e[9], 'cancel', '0'}
  for i = 1, #x do f[#f + 1] = x[i] end
  local prio = tonumber(e[10] or '') or 0
  if prio > 0 then
    f[#f + 1] = 'priority'
    f[#f + 1] = e[10]
  end
  local exp = tonumber(e[8]) or 0
  if exp > 0 then
    local sexp = istr(now + exp)
    f[#f + 1] = 'expires_at'
    f[#f + 1] = sexp
    zadd(qkey(q, 'deadlines'), sexp, e[1])
  end
  redis.call('HSET', jkey(e[1]), unpack(f))
  count(q, status, 1)
  if status == 'scheduled' then
    zadd(qkey(q, 'scheduled'), srun, e[1])
  elseif prio > 0 then
    ready(q, e[1], prio, false)
    return 'prio'
  end
  return status
end

-- push_pending appends ids (in order) to q's pending list and wakes as
-- enqueue.lua does: a token for each push that left the list short.
local function push_pending(q, ids)
  if #ids == 0 then return end
  local len = 0
  for i = 1, #ids, 4000 do
    len = redis.call('RPUSH', qkey(q, 'pending'), unpack(ids, i, math.min(i + 3999, #ids)))
  end
  local short = math.min(len, WAKE_MAX) - (len - #ids)
  if short > 0 then wake(q, short) end
end

-- batch_finish: the last member of a sealed batch ended (left reached 0):
-- the batch is done and its keys expire like its members (result_ttl, or
-- failed_ttl when a member failed). Its callback job (if any) is created
-- here when its queue shares the batch's slot (the ids' tags are equal);
-- a callback on a queue of another slot cannot be written by this script,
-- so the batch is marked cb_pending and put back in its queue's release
-- index, where the janitor submits it (batch_callbacks.lua) under an
-- idempotency key of the batch. Runs once: status leaves 'sealed' here.
local function batch_finish(bid, now)
  local bk = bkey(bid)
  local b = redis.call('HMGET', bk, 'queue', 'cb', 'result_ttl', 'n_failed', 'watch', 'idem', 'cbq')
  local set = {'status', 'done', 'finished', istr(now)}
  if b[2] then
    local e = cmsgpack.unpack(b[2])
    local cbq = b[7] or b[1]
    if string.sub(e[1], 1, 4) == string.sub(bid, 1, 4) then
      local st = make_job(cbq, e, now, {'batch_of', bid})
      if st == 'queued' then push_pending(cbq, {e[1]}) elseif st == 'prio' then wake(cbq, 1) end
      set[#set + 1] = 'callback'
      set[#set + 1] = e[1]
    else
      set[#set + 1] = 'cb_pending'
      set[#set + 1] = '1'
      redis.call('ZADD', qkey(b[1], 'batches'), now, bid)
    end
  end
  redis.call('HSET', bk, unpack(set))
  local ttl = tonumber(b[3] or '0') or 0
  if ttl <= 0 then ttl = RESULT_TTL end
  if (tonumber(b[4] or '0') or 0) > 0 and FAILED_TTL > ttl then ttl = FAILED_TTL end
  redis.call('EXPIRE', bk, ttl)
  redis.call('EXPIRE', bkey(bid, 'ids'), ttl)
  if b[6] then redis.call('EXPIRE', bidem_key(b[1], b[6]), ttl) end
  if b[5] then redis.call('PUBLISH', GP .. 'done', bid) end
end

-- batch_member_done counts a member that reached terminal state `to`
-- (terminal_f); the last one finishes the batch. A batch already done (a
-- member retried after the fan-in) or gone (expired) is left alone.
local function batch_member_done(bid, to, now)
  local bk = bkey(bid)
  if redis.call('HGET', bk, 'status') ~= 'sealed' then return end
  redis.call('HINCRBY', bk, 'n_' .. to, 1)
  if redis.call('HINCRBY', bk, 'left', -1) <= 0 then batch_finish(bid, now) end
end

-- batch_member_reopen un-counts a member leaving terminal state `from`
-- (an operator retry) while its batch still runs.
local function batch_member_reopen(bid, from)
  local bk = bkey(bid)
  if redis.call('HGET', bk, 'status') ~= 'sealed' then return end
  redis.call('HINCRBY', bk, 'n_' .. from, -1)
  redis.call('HINCRBY', bk, 'left', 1)
end

-- terminal moves id from state `from` to the terminal state `to`: finished
-- time, index, TTL on the record and its idempotency key, the purge entry
-- ("<state>|<id>" scored by the record's expiry, so purge finds expired
-- records by expiry time whatever their retention), and a PUBLISH for
-- long-polls when one watches the job (watch.lua marks it).
-- Extra field, value pairs (...) are stored with the status, in one HSET.
-- terminal_f takes the record's result_ttl, idem, watch, unique, batch and
-- logs fields already read (f, in that order), for callers that read the
-- record anyway. A batch member is counted in its batch (fan-in).
-- A unique key held until the job ends (enqueue.lua) is freed here.
-- A job that logged (log_append.lua sets its 'logs' field) has its log list
-- expire with the record; one that never logged costs no call for it.
-- Batch members and jobs that logged also carry 'ext' = 1, so the callers'
-- reads ask for that one field (a field a record lacks costs a whole scan of
-- its hash) and read 'batch' and 'logs' only for the records that have them
-- (ext_fields).
local function terminal_f(id, q, from, to, now, f, ...)
  local jk = jkey(id)
  leave(id, q, from)
  -- a running job left the deadlines index when it was claimed
  if from ~= 'running' then zrem(qkey(q, 'deadlines'), id) end
  local snow = istr(now)
  redis.call('HSET', jk, 'status', to, 'finished', snow, ...)
  zadd(qkey(q, to), snow, id)
  count(q, to, 1)
  local ttl = FAILED_TTL
  if to ~= 'failed' then
    ttl = tonumber(f[1] or '0') or 0
    if ttl <= 0 then ttl = RESULT_TTL end
  end
  local sttl = istr(ttl)
  redis.call('EXPIRE', jk, sttl)
  zadd(qkey(q, 'purge'), istr(now + ttl * 1000), to .. '|' .. id)
  if f[2] then redis.call('EXPIRE', idem_key(q, f[2]), sttl) end
  if f[3] then redis.call('PUBLISH', GP .. 'done', id) end  -- the done channel
  if f[4] then redis.call('DEL', qkey(q, 'unique:' .. f[4])) end
  if f[6] then redis.call('EXPIRE', logs_key(id), sttl) end
  if f[5] then batch_member_done(f[5], to, now) end
end

-- ext_fields: a record's batch and logs fields when its ext field (e) is set.
local NO_EXT = {}
local function ext_fields(jk, e)
  if not e then return NO_EXT end
  return redis.call('HMGET', jk, 'batch', 'logs')
end

local function terminal(id, q, from, to, now, ...)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'result_ttl', 'idem', 'watch', 'unique', 'ext')
  local e = ext_fields(jk, f[5])
  f[5], f[6] = e[1], e[2]
  terminal_f(id, q, from, to, now, f, ...)
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

-- lose_lease handles a running job whose lease ran out (the janitor) or that
-- its worker gave up on after its lease ran out in Redis: the attempt was
-- counted at claim; a cancel request makes it canceled, no attempts left
-- dead-letters it, else it goes back to the head of its queue.
-- Returns 'canceled', 'failed' or 'queued'.
local function lose_lease(id, q, now, why)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'attempts', 'max_attempts', 'cancel', 'priority')
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
  ready(q, id, f[4], true)
  count(q, 'queued', 1)
  return 'queued'
end


-- ---- the outcomes of a claim (outcomes.lua, one or many per call) ----
-- Each re-checks the fencing guard (held) and answers 0 when it refuses.

-- outcome_complete: success with result (JSON text). 1 committed. One
-- read serves the guard (as held does), terminal's fields, and whether an
-- earlier attempt's error must go.
local function outcome_complete(id, token, result, now)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'status', 'lease', 'queue', 'result_ttl', 'idem', 'watch',
    'error', 'unique', 'ext')
  if f[1] ~= 'running' or f[2] ~= token then return 0 end
  if f[7] then redis.call('HDEL', jk, 'error') end
  local e = ext_fields(jk, f[9])
  terminal_f(id, f[3], 'running', 'succeeded', now, {f[4], f[5], f[6], f[8], e[1], e[2]},
    'result', result)
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
  zadd(qkey(q, 'scheduled'), run_at, id)
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
  local c = redis.call('HMGET', jk, 'cancel', 'priority')
  if c[1] == '1' then
    terminal(id, q, 'running', 'canceled', now)
    return 2
  end
  leave(id, q, 'running')
  redis.call('HINCRBY', jk, 'attempts', -1)
  redis.call('HSET', jk, 'status', 'queued')
  ready(q, id, c[2], true)
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

-- ---- claiming (claim.lua, and outcomes.lua's fetch of next jobs) ----

-- claim_jobs takes up to max queued jobs of queue q for a worker, inside the
-- caller's batch (acc_begin .. acc_flush; see claim.lua for the whole
-- contract). Returns claim.lua's flat reply.
local CLAIM_SCAN_EXTRA = 1000
local CAP_RETRY_MS = 50   -- a queue at its concurrency cap: look again this soon

-- limit applies a queue's operator limits (q:<q>:limits, set by limits.lua)
-- to a claim of up to max jobs at now: the concurrency cap (running jobs of
-- the queue across every worker, counting moves of this call not yet
-- flushed) and the token bucket of the rate limit (n jobs per rate_ms,
-- refilled continuously in Redis time, bursts up to n). Returns how many may
-- be claimed, the bucket's tokens (nil without a rate) and, when none may,
-- how long to wait in ms. One HMGET per claim call when no limit is set.
local function limit(q, max, now)
  local lk = qkey(q, 'limits')
  local l = redis.call('HMGET', lk, 'rate_n', 'rate_ms', 'conc', 'tokens', 'ts', 'prio', 'types')
  local wait = 0
  if l[3] then
    local running = tonumber(redis.call('HGET', qkey(q, 'counts'), 'running') or '0') or 0
    if ACC and ACC.counts[q] then running = running + (ACC.counts[q].running or 0) end
    local room = (tonumber(l[3]) or 0) - running
    if room < max then max = room end
    if max <= 0 then wait = CAP_RETRY_MS end
  end
  local tokens = nil
  if l[1] then
    local n, per = tonumber(l[1]) or 1, tonumber(l[2]) or 1000
    tokens = tonumber(l[4] or '') or n
    local ts = tonumber(l[5] or '') or now
    if now > ts then tokens = math.min(n, tokens + (now - ts) * n / per) end
    local allowed = math.floor(tokens)
    if allowed < max then max = allowed end
    if allowed < 1 then
      local need = math.ceil((1 - tokens) * per / n)
      if need > wait then wait = need end
    end
  end
  if max < 0 then max = 0 end
  return max, tokens, wait, l[6] == '1', l[7] == '1'
end

-- Concurrency caps per job type (type_cap.lua): the limits hash holds
-- tconc:<type> = cap. The jobs of a capped type claimed while it is capped
-- are kept in q:<q>:trun:<type> (a ZSET id -> claim time); nothing takes
-- them out when they end: a claim that finds the set at the cap drops the
-- members no longer running first (at most cap reads), so finishing a job
-- costs nothing extra. A claim passes over waiting jobs of a type at its cap
-- (at most TYPE_SKIP_MAX per call) and puts them back where they were.
local TYPE_SKIP_MAX = 100
local NONE = {} -- an empty list never written to (claims without type caps)

-- type_gate returns a function room(type) -> entry or true (uncapped) or
-- false (at its cap), for one claim call of queue q; entry.n counts up as
-- the caller claims.
local function type_gate(q)
  local lk, tc = qkey(q, 'limits'), {}
  return function(ty)
    local e = tc[ty]
    if e == nil then
      local cap = tonumber(redis.call('HGET', lk, 'tconc:' .. ty) or '')
      if not cap then
        e = true
      else
        local tk = qkey(q, 'trun:' .. ty)
        local n = redis.call('ZCARD', tk)
        if n >= cap then
          for _, m in ipairs(redis.call('ZRANGE', tk, 0, -1)) do
            if redis.call('HGET', jkey(m), 'status') ~= 'running' then
              redis.call('ZREM', tk, m)
              n = n - 1
            end
          end
        end
        e = {cap = cap, n = n, key = tk}
      end
      tc[ty] = e
    end
    if e == true or e.n < e.cap then return e end
    return false
  end
end

local function claim_jobs(q, max, lease, worker, nonce)
  if redis.call('EXISTS', qkey(q, 'paused')) == 1 then return {0, 0} end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tokens, wait, hi, types
  max, tokens, wait, hi, types = limit(q, max, now)
  if max == 0 then return {now, -math.max(wait, 1)} end
  local pk, fk, ak, dk = qkey(q, 'pending'), qkey(q, 'fence'), qkey(q, 'active'), qkey(q, 'deadlines')
  local hk = hi and qkey(q, 'prio')
  local room = types and type_gate(q)
  -- passed over (a type at its cap): ids, prio scores; only with type caps
  local back, back_prio = NONE, nil
  if room then back, back_prio = {}, {} end
  local out, ids = {}, {}
  local last = tonumber(redis.call('GET', fk) or '0') or 0
  if last < floor then last = floor end
  local fence, snow, sdeadline = int(last), istr(now), istr(now + lease)
  local claimed, scanned, more = 0, 0, 0
  while claimed < max do
    local want = math.min(max - claimed, max + CLAIM_SCAN_EXTRA - scanned)
    if want <= 0 then
      if redis.call('LLEN', pk) > 0 or (hk and redis.call('ZCARD', hk) > 0) then more = 1 end
      break
    end
    -- up to want ids: from prio while it holds any (clearing the flag once
    -- it is empty), then from pending; from_prio: fewer than wanted does not
    -- mean none are left
    local popped, from_prio = nil, false
    if hk then
      local z = redis.call('ZPOPMIN', hk, want)
      if #z < 2 * want then
        redis.call('HDEL', qkey(q, 'limits'), 'prio')
        hk = nil
      end
      if #z > 0 then
        popped, from_prio = {}, true
        for i = 1, #z, 2 do
          popped[#popped + 1] = z[i]
          if room then back_prio[z[i]] = z[i + 1] end
        end
      end
    end
    if not popped then popped = redis.call('LPOP', pk, want) end
    if not popped then break end
    scanned = scanned + #popped
    for _, id in ipairs(popped) do
      local jk = jkey(id)
      -- one read for the guard and the answer: status, expires_at, started,
      -- attempts, then the 6 fields handed to the worker (none once TYPE_SKIP_MAX
      -- jobs were passed over: the rest of the pop goes back unread)
      local f = #back < TYPE_SKIP_MAX and redis.call('HMGET', jk, 'status', 'expires_at', 'started',
        'attempts', 'type', 'payload', 'max_attempts', 'timeout_s', 'created', 'run_at')
      if not f then
        back[#back + 1] = id
        f = {}
      end
      local gate = true
      if room and f[1] == 'queued' and not (f[2] and not f[3] and tonumber(f[2]) <= now) then
        gate = room(f[5])
        if not gate then back[#back + 1] = id end
      end
      if f[1] == 'queued' and gate then
        -- expiry applies only to a job that never started (not to one released
        -- by a drain or requeued after a lost lease)
        if f[2] and not f[3] and tonumber(f[2]) <= now then
          terminal(id, q, 'queued', 'expired', now)
        else
          if gate ~= true then
            redis.call('ZADD', gate.key, snow, id)
            gate.n = gate.n + 1
          end
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
    if #popped < want and not from_prio then break end
    if #back >= TYPE_SKIP_MAX then break end
  end
  if #back > 0 then
    -- back where they were: prio entries with their scores, pending ones at
    -- the head in their order
    for i = #back, 1, -1 do
      local id = back[i]
      if back_prio[id] then
        redis.call('ZADD', qkey(q, 'prio'), back_prio[id], id)
        prio_mark(q)
      else
        redis.call('LPUSH', pk, id)
      end
    end
    if claimed == 0 then more = -CAP_RETRY_MS end
  end
  if claimed > 0 then
    redis.call('SET', fk, fence)
    redis.call('SET', rkey(nonce), table.concat(ids, ','), 'PX', lease)
  end
  if tokens then
    redis.call('HSET', qkey(q, 'limits'), 'tokens', tostring(tokens - claimed), 'ts', snow)
  end
  out[#out + 1] = now
  out[#out + 1] = more
  return out
end

-- begin starts a call: the call's keys and arguments, and fresh per-call
-- state (no batch open, an empty number cache). Library-level state lives
-- as long as the library, so nothing else here may change between calls.
local function begin(keys, args)
  KEYS, ARGV = keys, args
  SP, GP = keys[1], args[1]
  RESULT_TTL, FAILED_TTL = tonumber(args[2]), tonumber(args[3])
  ACC, ISTR = nil, {}
end
