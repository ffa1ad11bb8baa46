-- outcomes: commit the outcomes of one or more claims of one slot in one
-- call (a worker's group commit), and optionally claim the next jobs for
-- the slots they free ("complete and fetch next": one call instead of an
-- outcome call and a claim call).
-- ARGV[4..8] = the fetch: queue ('' = none; a queue of this slot), max,
-- lease_ms, worker, nonce, as claim.lua takes them.
-- ARGV[9..] = 6 arguments per outcome:
--   kind, id, lease token, a1, a2, a3 with kind
--   'complete' (a1 = result JSON), 'fail' (a1 = error, a2 = permanent '1'/'0',
--   a3 = backoff_ms), 'release' (a1 = mode 'drain'/'abandon'), 'cancel_ack'.
-- Each is guarded on its own (running under its lease token) and answers as
-- the _lib.lua outcome_* functions do. Their index and count writes, and
-- the fetch's, are batched (_lib.lua) and sent once at the end; a job named
-- twice in one call (never sent by the worker, but allowed) flushes the
-- batch first, so its second outcome reads what the first one wrote.
-- Returns {codes, fetched}: one code per outcome, and claim.lua's flat
-- reply for the fetch ({} when none was asked for).
local now = now_ms()
local out, seen = {}, {}
acc_begin()
for i = 9, #ARGV - 5, 6 do
  local kind, id, token = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if seen[id] then
    acc_flush()
    acc_begin()
    seen = {}
  end
  seen[id] = true
  local code = 0
  if kind == 'complete' then
    code = outcome_complete(id, token, ARGV[i + 3], now)
  elseif kind == 'fail' then
    code = outcome_fail(id, token, ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], now)
  elseif kind == 'release' then
    code = outcome_release(id, token, ARGV[i + 3], now)
  elseif kind == 'cancel_ack' then
    code = outcome_cancel_ack(id, token, now)
  end
  out[#out + 1] = code
end
local fetched = {}
if ARGV[4] ~= '' then
  fetched = claim_jobs(ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8])
end
acc_flush()
return {out, fetched}
