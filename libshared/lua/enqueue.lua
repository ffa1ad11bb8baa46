-- enqueue: new jobs of one slot, queued or scheduled; or, for a job whose
-- idempotency key was seen, the existing job of the key. ARGV[4..] = 14
-- arguments per job: id, queue, type, payload, max_attempts, timeout_s,
-- delay_ms, run_at_ms, expires_in_ms, result_ttl_s, idem_key, unique_key,
-- unique_for_ms, priority (0-9; above 0 the job waits in the
-- queue's prio ZSET, see ready() in _lib.lua). The idempotency key is
-- global outside Redis Cluster (its job may be another queue's: any_jkey)
-- and the queue's under it (idem_key in _lib.lua).
-- Returns one reply per job, in order: {1, id, status, created, run_at,
-- expires_at or ''} created (the caller knows the rest: it sent it),
-- {0, id, record...} the existing job of the key (its fields and values),
-- {-2, holder id} refused: the unique key is held by
-- another job (the key q:<q>:unique:<key> holds its id: until that job ends
-- when unique_for_ms is 0, else for that window); either way a submit needs no second round trip to
-- answer with the stored job.
--
-- A batch is one call per slot: the record and idempotency writes go out
-- per job, the pushes onto each queue's pending list (in order) and prio
-- ZSET, the index and count writes and the wake writes once per call.
local now = now_ms()
local snow = istr(now)
local out = {}
local pushed, order = {}, {}   -- queue -> ids to RPUSH, in job order
local hi, hi_order = nil, nil  -- queue -> {priority, id, ...} for the prio ZSET
acc_begin()
for base = 4, #ARGV - 13, 14 do
  local id, q, idem = ARGV[base], ARGV[base + 1], ARGV[base + 10]
  local rep = nil
  if idem ~= '' then
    local existing = redis.call('GET', idem_key(q, idem))
    if existing then
      local rec = redis.call('HGETALL', any_jkey(existing))
      if #rec > 0 then
        table.insert(rec, 1, existing)
        table.insert(rec, 1, 0)
        rep = rec
      end
    end
  end
  local unique, window = ARGV[base + 11], tonumber(ARGV[base + 12]) or 0
  if not rep and unique ~= '' then
    local uk = qkey(q, 'unique:' .. unique)
    local holder
    if window > 0 then
      holder = redis.call('SET', uk, id, 'NX', 'GET', 'PX', window)
    else
      holder = redis.call('SET', uk, id, 'NX', 'GET')
    end
    if holder then rep = {-2, holder} end
  end
  if not rep then
    local run_at, srun = now, snow
    local delay, at = tonumber(ARGV[base + 6]), tonumber(ARGV[base + 7])
    if delay > 0 then run_at = now + delay elseif at > now then run_at = at end
    if run_at ~= now then srun = istr(run_at) end
    local status = 'queued'
    if run_at > now then status = 'scheduled' end
    local f = {'queue', q, 'type', ARGV[base + 2], 'payload', ARGV[base + 3], 'status', status,
      'attempts', '0', 'max_attempts', ARGV[base + 4], 'timeout_s', ARGV[base + 5], 'fence', '0',
      'created', snow, 'run_at', srun, 'result_ttl', ARGV[base + 9], 'cancel', '0'}
    if idem ~= '' then
      f[#f + 1] = 'idem'
      f[#f + 1] = idem
      redis.call('SET', idem_key(q, idem), id)
    end
    local prio = 0
    if ARGV[base + 13] ~= '0' then prio = tonumber(ARGV[base + 13]) or 0 end
    if prio > 0 then
      f[#f + 1] = 'priority'
      f[#f + 1] = ARGV[base + 13]
    end
    if unique ~= '' and window <= 0 then
      f[#f + 1] = 'unique' -- held until the job ends: terminal() frees it
      f[#f + 1] = unique
    end
    local exp, sexp = tonumber(ARGV[base + 8]), ''
    if exp > 0 then
      sexp = istr(now + exp)
      f[#f + 1] = 'expires_at'
      f[#f + 1] = sexp
      zadd(qkey(q, 'deadlines'), sexp, id)
    end
    redis.call('HSET', jkey(id), unpack(f))
    if status == 'queued' and prio > 0 then
      if not hi then hi, hi_order = {}, {} end
      local h = hi[q]
      if not h then
        h = {}
        hi[q] = h
        hi_order[#hi_order + 1] = q
      end
      h[#h + 1] = prio
      h[#h + 1] = id
    elseif status == 'queued' then
      local p = pushed[q]
      if not p then
        p = {}
        pushed[q] = p
        order[#order + 1] = q
      end
      p[#p + 1] = id
    else
      zadd(qkey(q, 'scheduled'), srun, id)
    end
    count(q, status, 1)
    rep = {1, id, status, snow, srun, sexp}
  end
  out[#out + 1] = rep
end
for _, q in ipairs(order) do
  local ids = pushed[q]
  local len = 0
  for i = 1, #ids, 4000 do
    len = redis.call('RPUSH', qkey(q, 'pending'), unpack(ids, i, math.min(i + 3999, #ids)))
  end
  -- A worker sleeps on the wake list only after a claim found the queue
  -- empty, and the push that makes a queue non-empty always wakes one; past
  -- WAKE_MAX queued jobs every worker that could be asleep has had a token
  -- already, so a backlog costs no wake writes: one token for each push
  -- that left the list at most WAKE_MAX long.
  local short = math.min(len, WAKE_MAX) - (len - #ids)
  if short > 0 then wake(q, short) end
end
for _, q in ipairs(hi_order or {}) do
  local h = hi[q]
  local n = #h / 2
  local seq = redis.call('INCRBY', qkey(q, 'prio_seq'), n) - n
  local args = {}
  for i = 1, #h, 2 do
    seq = seq + 1
    args[#args + 1] = prio_score(h[i], seq)
    args[#args + 1] = h[i + 1]
  end
  local zk = qkey(q, 'prio')
  for i = 1, #args, 4000 do redis.call('ZADD', zk, unpack(args, i, math.min(i + 3999, #args))) end
  prio_mark(q)
  local len = redis.call('ZCARD', zk)
  local short = math.min(len, WAKE_MAX) - (len - n)
  if short > 0 then wake(q, short) end
end
acc_flush()
return out
