-- release: a worker hands a running job back. ARGV[4..] = id, lease token,
-- mode. Guard: running under this lease token.
--   mode 'drain' (shutdown): to the head of its queue, attempt given back.
--   mode 'abandon' (the worker's lease watchdog stopped the handler because
--     renewals were failing): while the lease still holds in Redis the worker
--     gave up first, so it is a drain (attempt given back); once the lease has
--     run out in Redis it is what the janitor would do for a lost lease (the
--     attempt stays spent; none left dead-letters it). Either way the job
--     does not wait out a lease for the janitor.
-- Returns 1 released (queued), 2 canceled instead (a cancel was requested:
-- the job must not run again), 3 dead-lettered (abandon, no attempts left),
-- 0 refused.
local id, token, mode = ARGV[4], ARGV[5], ARGV[6]
local jk = jkey(id)
local q = held(jk, token)
if not q then return 0 end
local now = now_ms()
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
