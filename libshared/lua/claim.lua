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
-- The work is claim_jobs in _lib.lua, which outcomes.lua shares.
-- Operator limits (limits.lua) cap what a call may take: a queue at its
-- concurrency cap or out of rate tokens yields nothing and says how long to
-- wait.
-- Returns a flat array, 10 entries per job: id, fence, lease token, attempt,
-- type, payload, max_attempts, timeout_s, created, run_at; then started
-- (now) and more: 1 when the scan budget ran out before the list did (call
-- again at once), -N when a limit held the claim back (nothing for N ms).
acc_begin()
local out = claim_jobs(ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8])
acc_flush()
return out
