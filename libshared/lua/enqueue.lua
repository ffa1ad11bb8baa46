-- enqueue: a new job, queued or scheduled; or the existing job of its
-- idempotency key. ARGV[4..] = id, queue, type, payload, max_attempts,
-- timeout_s, delay_ms, run_at_ms, expires_in_ms, result_ttl_s, idem_key,
-- max_queues. Returns {1, id, record...} created, {0, id, record...} the
-- existing job of the key, {-1, 'max_queues'}; record is the job's HGETALL,
-- so a submit needs no second round trip to answer with the stored job.
local id, q, idem = ARGV[4], ARGV[5], ARGV[14]
if idem ~= '' then
  local existing = redis.call('GET', idem_key(idem))
  if existing then
    local rec = redis.call('HGETALL', any_jkey(existing))
    if #rec > 0 then
      table.insert(rec, 1, existing)
      table.insert(rec, 1, 0)
      return rec
    end
  end
end
local maxq = tonumber(ARGV[15])
local known = redis.call('SISMEMBER', queues_key(), q) == 1
if maxq > 0 and not known and redis.call('SCARD', queues_key()) >= maxq then
  return {-1, 'max_queues'}
end
local now = now_ms()
local run_at = now
local delay, at = tonumber(ARGV[10]), tonumber(ARGV[11])
if delay > 0 then run_at = now + delay elseif at > now then run_at = at end
local status = 'queued'
if run_at > now then status = 'scheduled' end
local jk = jkey(id)
redis.call('HSET', jk, 'queue', q, 'type', ARGV[6], 'payload', ARGV[7], 'status', status,
  'attempts', 0, 'max_attempts', ARGV[8], 'timeout_s', ARGV[9], 'fence', 0, 'created', now,
  'run_at', run_at, 'result_ttl', ARGV[13], 'cancel', 0)
if idem ~= '' then
  redis.call('HSET', jk, 'idem', idem)
  redis.call('SET', idem_key(idem), id)
end
local exp = tonumber(ARGV[12])
if exp > 0 then
  redis.call('HSET', jk, 'expires_at', now + exp)
  redis.call('ZADD', qkey(q, 'deadlines'), now + exp, id)
end
if status == 'queued' then
  wake_pushed(q, redis.call('RPUSH', qkey(q, 'pending'), id))
else
  redis.call('ZADD', qkey(q, 'scheduled'), run_at, id)
end
if not known then redis.call('SADD', queues_key(), q) end
count(q, status, 1)
local rec = redis.call('HGETALL', jk)
table.insert(rec, 1, id)
table.insert(rec, 1, 1)
return rec
