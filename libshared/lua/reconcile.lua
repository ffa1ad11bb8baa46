-- reconcile (janitor's reconciler): finds index drift and repairs it, one
-- bounded slice per call, driven by libshared/src/reconcile.c. Every repair re-checks its own guard here, in
-- the same atomic call that makes it, so any number of janitors may run this
-- at once: two janitors repairing the same entry change it once.
--
-- The invariants it restores (every other script keeps them):
--   a running record is in `active`; a scheduled one in `scheduled`; a queued
--   one in `pending` (priority 0) or `prio` (priority 1-9); a terminal one in the ZSET of its state; a queued or
--   scheduled record with expires_at that never started is in `deadlines`
--   (expiry never applies once started: claim takes it out for good);
--   an entry of active/scheduled/deadlines/a terminal ZSET belongs to a record
--   of that queue in the matching state;
--   counts[st] = distinct pending and prio ids whose record is queued (st = queued),
--   active/scheduled entries whose record is running/scheduled, terminal
--   entries whose record is in that state or gone (purge takes those out).
-- Pending entries whose record is in another state are claim's to drop (lazy
-- deletion, see _lib.lua) and are left alone.
-- Entries that outlive their record in the normal course of things are not
-- drift: a terminal entry whose record's retention TTL ran out (purge.lua's
-- work: removed with its count) and a pending entry whose lazily deleted
-- job's record expired (removed). Those are reported as `purged`, apart from
-- the repairs, so a healthy system reports no repair at all.
--
-- ARGV[4] = mode, then:
--   'small', queue, max: when all the queue's indexes hold at most max entries,
--       check every entry and recompute counts in this one call.
--       Returns {-1} when too big, else {purged, orphans, active_not_running,
--       stale, counts_fixed}.
--   'index', queue, index, cursor, count: one ZSCAN slice of active, scheduled,
--       deadlines, prio (checked like pending) or a terminal ZSET. Returns {next_cursor ('0' = done),
--       purged, orphans, active_not_running, stale}.
--   'pending', queue, offset, count, max_len: one LRANGE slice of pending;
--       entries with no record (purged) or another queue's record (stale) are
--       removed. Skipped (done at once) when the list is longer than max_len,
--       since LREM is O(N). Returns {next_offset (-1 = done), purged, stale}.
--   'record', id, max_len: one job record is put back in the index its state
--       needs; a running record missing from active gets a lease deadline of
--       now, so the normal expiry requeues it. A queued record is looked for
--       in pending only when the list holds at most max_len entries.
--       Returns {running_unleased, unindexed}.
--   'counts', queue, max: recompute counts when the indexes hold at most max
--       entries. Returns {-1} when too big, else {counts_fixed}.
local mode = ARGV[4]
local ZSETS = {'active', 'scheduled', 'deadlines', 'succeeded', 'failed', 'canceled', 'expired'}

-- entry_ok: does a record (status st, queue rq) belong in index idx of q?
local function entry_ok(q, idx, st, rq)
  if rq ~= q then return false end
  if idx == 'prio' then return true end -- like pending: other states are claim's to drop
  if idx == 'active' then return st == 'running' end
  if idx == 'deadlines' then return st == 'queued' or st == 'scheduled' end
  return st == idx
end

-- check_ids checks ids of ZSET idx of queue q, removing what does not belong.
local function check_ids(q, idx, ids, step)
  local zk = qkey(q, idx)
  local purged, orphans, notrun, stale = 0, 0, 0, 0
  for i = 1, #ids, step do
    local id = ids[i]
    local f = redis.call('HMGET', jkey(id), 'status', 'queue')
    if not f[1] then
      if redis.call('ZREM', zk, id) == 1 then
        if TERMINAL[idx] then
          count(q, idx, -1)
          purged = purged + 1
        elseif idx == 'prio' then
          purged = purged + 1 -- a lazily deleted job whose record expired
        else
          orphans = orphans + 1
        end
      end
    elseif not entry_ok(q, idx, f[1], f[2]) then
      if redis.call('ZREM', zk, id) == 1 then
        if idx == 'active' then notrun = notrun + 1 else stale = stale + 1 end
      end
    end
  end
  return purged, orphans, notrun, stale
end

-- check_pending removes pending entries of q (ids) with no record or another
-- queue's record; returns purged, stale and how many entries went.
local function check_pending(q, ids)
  local pk = qkey(q, 'pending')
  local purged, stale, removed = 0, 0, 0
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', jkey(id), 'status', 'queue')
    if not f[1] or f[2] ~= q then
      local k = redis.call('LREM', pk, 0, id)
      if k > 0 then
        removed = removed + k
        if not f[1] then purged = purged + 1 else stale = stale + 1 end
      end
    end
  end
  return purged, stale, removed
end

local function index_size(q)
  local n = redis.call('LLEN', qkey(q, 'pending')) + redis.call('ZCARD', qkey(q, 'prio'))
  for _, idx in ipairs(ZSETS) do n = n + redis.call('ZCARD', qkey(q, idx)) end
  return n
end

-- recount recomputes q's counts from its indexes (see the invariants above)
-- and rewrites the states that differ; returns how many did.
local function recount(q)
  local c = {queued = 0, scheduled = 0, running = 0, succeeded = 0, failed = 0,
             canceled = 0, expired = 0}
  local seen = {}
  local waiting = redis.call('LRANGE', qkey(q, 'pending'), 0, -1)
  for _, id in ipairs(redis.call('ZRANGE', qkey(q, 'prio'), 0, -1)) do waiting[#waiting + 1] = id end
  for _, id in ipairs(waiting) do
    if not seen[id] then
      seen[id] = true
      local f = redis.call('HMGET', jkey(id), 'status', 'queue')
      if f[1] == 'queued' and f[2] == q then c.queued = c.queued + 1 end
    end
  end
  local function tally(idx, st)
    for _, id in ipairs(redis.call('ZRANGE', qkey(q, idx), 0, -1)) do
      local f = redis.call('HMGET', jkey(id), 'status', 'queue')
      if (f[1] == st and f[2] == q) or (TERMINAL[st] and not f[1]) then c[st] = c[st] + 1 end
    end
  end
  tally('active', 'running')
  tally('scheduled', 'scheduled')
  for st, _ in pairs(TERMINAL) do tally(st, st) end
  local ck = qkey(q, 'counts')
  local fixed = 0
  for st, n in pairs(c) do
    if (tonumber(redis.call('HGET', ck, st) or '0') or 0) ~= n then
      redis.call('HSET', ck, st, n)
      fixed = fixed + 1
    end
  end
  return fixed
end

if mode == 'small' then
  local q, max = ARGV[5], tonumber(ARGV[6])
  if index_size(q) > max then return {-1} end
  local purged, orphans, notrun, stale = 0, 0, 0, 0
  for _, idx in ipairs(ZSETS) do
    local p, o, n, s = check_ids(q, idx, redis.call('ZRANGE', qkey(q, idx), 0, -1), 1)
    purged, orphans, notrun, stale = purged + p, orphans + o, notrun + n, stale + s
  end
  local p, s = check_pending(q, redis.call('LRANGE', qkey(q, 'pending'), 0, -1))
  local hp, _, _, hs = check_ids(q, 'prio', redis.call('ZRANGE', qkey(q, 'prio'), 0, -1), 1)
  return {purged + p + hp, orphans, notrun, stale + s + hs, recount(q)}

elseif mode == 'index' then
  local q, idx, cursor, n = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
  local ok = idx == 'prio'
  for _, z in ipairs(ZSETS) do if z == idx then ok = true end end
  if not ok then return redis.error_reply('reconcile: unknown index ' .. idx) end
  local res = redis.call('ZSCAN', qkey(q, idx), cursor, 'COUNT', n)
  local purged, orphans, notrun, stale = check_ids(q, idx, res[2], 2)
  return {res[1], purged, orphans, notrun, stale}

elseif mode == 'pending' then
  local q, off, n, max_len = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local pk = qkey(q, 'pending')
  if redis.call('LLEN', pk) > max_len then return {-1, 0, 0} end
  local ids = redis.call('LRANGE', pk, off, off + n - 1)
  local purged, stale, removed = check_pending(q, ids)
  local nxt = -1
  if #ids == n then nxt = math.max(0, off + n - removed) end
  return {nxt, purged, stale}

elseif mode == 'record' then
  local id, max_len = ARGV[5], tonumber(ARGV[6])
  local f = redis.call('HMGET', jkey(id), 'status', 'queue', 'run_at', 'expires_at', 'finished',
    'started', 'priority')
  local st, q = f[1], f[2]
  if not st or not q then return {0, 0} end
  local unleased, unindexed = 0, 0
  if st == 'running' then
    if not redis.call('ZSCORE', qkey(q, 'active'), id) then
      redis.call('ZADD', qkey(q, 'active'), now_ms(), id)
      unleased = 1
    end
  elseif st == 'scheduled' then
    if not redis.call('ZSCORE', qkey(q, 'scheduled'), id) then
      redis.call('ZADD', qkey(q, 'scheduled'), tonumber(f[3]) or now_ms(), id)
      unindexed = 1
    end
  elseif st == 'queued' and (tonumber(f[7] or '') or 0) > 0 then
    if not redis.call('ZSCORE', qkey(q, 'prio'), id) then
      ready(q, id, f[7], false)
      wake(q, 1)
      unindexed = 1
    end
  elseif st == 'queued' then
    local pk = qkey(q, 'pending')
    if redis.call('LLEN', pk) <= max_len and not redis.call('LPOS', pk, id) then
      redis.call('RPUSH', pk, id)
      wake(q, 1)
      unindexed = 1
    end
  elseif TERMINAL[st] then
    if not redis.call('ZSCORE', qkey(q, st), id) then
      redis.call('ZADD', qkey(q, st), tonumber(f[5]) or now_ms(), id)
      unindexed = 1
    end
  end
  if (st == 'queued' or st == 'scheduled') and f[4] and not f[6]
     and not redis.call('ZSCORE', qkey(q, 'deadlines'), id) then
    redis.call('ZADD', qkey(q, 'deadlines'), tonumber(f[4]) or now_ms(), id)
    unindexed = unindexed + 1
  end
  return {unleased, unindexed}

elseif mode == 'counts' then
  local q, max = ARGV[5], tonumber(ARGV[6])
  if index_size(q) > max then return {-1} end
  return {recount(q)}
end
return redis.error_reply('reconcile: unknown mode ' .. tostring(mode))
